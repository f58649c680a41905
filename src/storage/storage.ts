// Where a secrets engine keeps its state: Vault's storage, reached back over the
// go-plugin broker (encrypted at rest by Vault's barrier, replicated with Vault).
// Nothing is kept only in the plugin process or on its disk.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { GrpcClient, GrpcError, UnaryMethod } from '../goplugin/grpc-client';
import { methodDef } from '../goplugin/protos';

/** A key-value store with Vault's semantics (keys are paths; list is one level deep). */
export interface Storage {
  get(key: string): Promise<Buffer | undefined>;
  put(key: string, value: Buffer): Promise<void>;
  delete(key: string): Promise<void>;
  /** Keys directly under prefix; sub-"directories" end in "/" (Vault's semantics). */
  list(prefix: string): Promise<string[]>;
}

/** The JSON value at `key`, or undefined when there is none. */
export async function getJson<T>(s: Storage, key: string): Promise<T | undefined> {
  const b = await s.get(key);
  return b ? (JSON.parse(b.toString('utf8')) as T) : undefined;
}

/** Store `value` as JSON at `key`. */
export async function putJson(s: Storage, key: string, value: unknown): Promise<void> {
  await s.put(key, Buffer.from(JSON.stringify(value)));
}

/** Vault's pb.Storage messages (proto/backend.proto), as @grpc/proto-loader decodes them. */
interface StorageEntry {
  key: string;
  value: Buffer;
  seal_wrap: boolean;
}
/** Each method of pb.Storage: its request and its reply (every reply may carry `err`). */
interface StorageMethods {
  Get: { req: { key: string }; reply: { entry?: { value?: Buffer } | null; err?: string } };
  Put: { req: { entry: StorageEntry }; reply: { err?: string } };
  Delete: { req: { key: string }; reply: { err?: string } };
  List: { req: { prefix: string }; reply: { keys?: string[]; err?: string } };
}
type Methods = { [M in keyof StorageMethods]: UnaryMethod<StorageMethods[M]['req'], StorageMethods[M]['reply']> };
let methods: Methods | undefined;
/** pb.Storage's methods, from the service definition (looked up once). */
const storageMethods = (): Methods =>
  (methods ??= {
    Get: methodDef('pb.Storage', 'Get'),
    Put: methodDef('pb.Storage', 'Put'),
    Delete: methodDef('pb.Storage', 'Delete'),
    List: methodDef('pb.Storage', 'List'),
  });

// The request a storage call is made for, without threading it through every engine:
// Vault 1.8 sets no deadline on its calls and only cancels them, so when the caller goes
// away the storage calls of its request stop (in flight ones are cancelled, later ones
// refused) instead of running to their own deadline.
const requestSignal = new AsyncLocalStorage<RequestSignal>();

/** What storage calls use of a request's cancellation: an AbortSignal has it (the secrets binding passes a lighter one). */
export interface RequestSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', fn: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', fn: () => void): void;
}

/** Run `fn` so that the storage calls it makes stop once `signal` aborts. */
export function withRequestSignal<T>(signal: RequestSignal, fn: () => Promise<T>): Promise<T> {
  return requestSignal.run(signal, fn);
}

/** Vault cancelled the request a storage call was made for. */
export class RequestCancelled extends Error {
  constructor() {
    super('the request was cancelled by Vault');
  }
}

/** Vault's pb.Storage service as a client (over the broker). Errors come back in the reply's err field. */
export class GrpcStorage implements Storage {
  constructor(
    private readonly client: Pick<GrpcClient, 'unary'>,
    /** Request metadata for every call (Vault's storage needs none). */
    private readonly metadata?: Record<string, string>,
    private readonly timeoutMs = 30_000,
  ) {}

  private async call<M extends keyof StorageMethods>(method: M, req: StorageMethods[M]['req']): Promise<StorageMethods[M]['reply']> {
    const signal = requestSignal.getStore();
    if (signal?.aborted) throw new RequestCancelled();
    let reply: StorageMethods[M]['reply'];
    try {
      reply = await this.client.unary(storageMethods()[method], req, { timeoutMs: this.timeoutMs, signal, metadata: this.metadata });
    } catch (e) {
      if (signal?.aborted) throw new RequestCancelled();
      throw new Error(`storage ${method}: ${(e as Partial<GrpcError>).details || (e as Error).message}`, { cause: e });
    }
    if (reply.err) throw new Error(`storage ${method}: ${reply.err}`);
    return reply;
  }

  async get(key: string): Promise<Buffer | undefined> {
    const r = await this.call('Get', { key });
    return r.entry ? Buffer.from(r.entry.value ?? Buffer.alloc(0)) : undefined;
  }
  async put(key: string, value: Buffer): Promise<void> {
    await this.call('Put', { entry: { key, value, seal_wrap: false } });
  }
  async delete(key: string): Promise<void> {
    await this.call('Delete', { key });
  }
  async list(prefix: string): Promise<string[]> {
    return (await this.call('List', { prefix })).keys ?? [];
  }
}

/** For unit tests and the conformance host's stand-in; same listing semantics as Vault. */
export class MemoryStorage implements Storage {
  readonly data = new Map<string, Buffer>();
  async get(key: string) {
    const v = this.data.get(key);
    return v ? Buffer.from(v) : undefined;
  }
  async put(key: string, value: Buffer) {
    this.data.set(key, Buffer.from(value));
  }
  async delete(key: string) {
    this.data.delete(key);
  }
  async list(prefix: string) {
    const out = new Set<string>();
    for (const k of this.data.keys()) {
      if (!k.startsWith(prefix)) continue;
      const rest = k.slice(prefix.length);
      const slash = rest.indexOf('/');
      out.add(slash >= 0 ? rest.slice(0, slash + 1) : rest);
    }
    return [...out].sort();
  }
}
