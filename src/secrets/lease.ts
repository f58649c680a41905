// Secrets with leases (Vault's logical.Secret and framework.Secret). A response may carry a
// secret: Vault then keeps a lease for it and later sends the renew and revoke operations
// back with that secret, whose internal data names its type; the backend hands them to
// the handler the engine declared for that type, as Vault's framework does.
import type { Request, Response } from './framework';

/** The lease on a response's secret, as Vault's logical.Secret (times in whole seconds). */
export interface LeasedSecret {
  /** Kept by Vault with the lease and given back on renew and revoke; never shown to the client. */
  internal: Record<string, unknown>;
  ttl: number;
  maxTtl?: number;
  renewable: boolean;
  /** On renew: the increment the client asked for (0: none). */
  increment?: number;
  /** On renew and revoke: the lease Vault keeps. */
  leaseId?: string;
  /** On renew: when the lease was issued (epoch ms), if Vault said. */
  issueTime?: number;
}

/** A request to renew or revoke a secret this mount issued. */
export interface SecretRequest extends Pick<Request, 'storage' | 'system' | 'displayName' | 'mountPoint'> {
  operation: 'renew' | 'revoke';
  secret: LeasedSecret;
  /** The data Vault kept with the lease (the issuing response's data). */
  data: Record<string, unknown>;
}

/** Renews or revokes a leased secret. */
export type SecretHandler = (req: SecretRequest) => Promise<Response | undefined>;

/** A type of secret an engine issues with a lease (Vault's framework.Secret). */
export interface SecretType {
  /** Stored in the secret's internal data as secret_type; never change it once leases exist. */
  type: string;
  /** The lease TTL given when the handler says none (seconds; 0: Vault's mount default). */
  defaultTtl: number;
  /** Without it the secret is not renewable, and a renew is an unsupported operation. */
  renew?: SecretHandler;
  revoke: SecretHandler;
}

/** The internal-data key naming a secret's type, as Vault's framework writes it. */
export const SECRET_TYPE_KEY = 'secret_type';

/** A response leasing a secret of `type`: `data` for the client, `internal` kept by Vault. */
export function secretResponse(type: SecretType, data: Record<string, unknown>, internal: Record<string, unknown> = {}, ttl = type.defaultTtl): Response {
  return { data, secret: { internal: { ...internal, [SECRET_TYPE_KEY]: type.type }, ttl, renewable: type.renew !== undefined } };
}
