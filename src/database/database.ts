// The database role's contract, free of any transport, as Vault's dbplugin v5 `Database`:
// plain requests and responses; the gRPC binding (plugin.ts) only converts messages and
// errors. Implemented by SqlDatabase (sql-database.ts); every call reaches it through the
// one error-sanitising wrapper (sanitizing-database.ts).
import type { CallBounds } from './bounds';

/** dbplugin's Initialize, transport-free. */
export interface InitializeRequest {
  /** The connection details as Vault stores them (`vault write database/config/<name> ...`). */
  config: Record<string, unknown>;
  /** Connect now and fail clearly if that is impossible. */
  verifyConnection: boolean;
}
/** What Initialize answers. */
export interface InitializeResponse {
  /** What Vault stores and sends back after restarts. */
  config: Record<string, unknown>;
}

/** Each call's request carries its bounds: the caller's deadline and cancellation (Vault's ctx). */
export interface NewUserRequest extends CallBounds {
  displayName: string;
  roleName: string;
  password: string;
  expiration?: Date;
  statements: string[];
  credentialType: number;
}
/** The username NewUser created. */
export interface NewUserResponse {
  username: string;
}

/** dbplugin's UpdateUser: a new password and/or expiration, each with its statements. */
export interface UpdateUserRequest extends CallBounds {
  username: string;
  password?: { newPassword: string; statements: string[] };
  expiration?: { newExpiration?: Date; statements: string[] };
  publicKey?: boolean;
  credentialType?: number;
  /** Self-managed static roles: the user's current password, to change its own. */
  selfManagedPassword?: string;
}
/** UpdateUser answers nothing. */
export type UpdateUserResponse = Record<string, never>;

/** dbplugin's DeleteUser: the user and the revocation statements (empty: the dialect's default revocation). */
export interface DeleteUserRequest extends CallBounds {
  username: string;
  statements: string[];
}
/** DeleteUser answers nothing. */
export type DeleteUserResponse = Record<string, never>;

/** dbplugin v5's Database interface without its transport: what the gRPC binding calls. */
export interface Database {
  initialize(req: InitializeRequest): Promise<InitializeResponse>;
  newUser(req: NewUserRequest): Promise<NewUserResponse>;
  updateUser(req: UpdateUserRequest): Promise<UpdateUserResponse>;
  deleteUser(req: DeleteUserRequest): Promise<DeleteUserResponse>;
  /** The plugin's type name, as Vault's Type call returns it. */
  type(): string;
  /** Free everything the instance holds (connections, timers, listeners). */
  close(): Promise<void>;
}

/** The database type this plugin reports to Vault. */
export const TYPE_NAME = 'vault-plugin-ts';
