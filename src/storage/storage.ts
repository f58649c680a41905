// Where a secrets engine keeps its state: Vault's storage, reached back over the
// go-plugin broker (encrypted at rest by Vault's barrier, replicated with Vault).
// Nothing is kept only in the plugin process or on its disk.
import { AsyncLocalStorage } from 'node:async_hooks';
import type * as grpc from '@grpc/grpc-js';

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
type Unary<M extends keyof StorageMethods> = (
  req: StorageMethods[M]['req'],
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (e: grpc.ServiceError | null, r: StorageMethods[M]['reply'] | undefined) => void,
) => grpc.ClientUnaryCall;

/** The client's method for `method`, bound; an error if the client (made from the service's definition) lacks it. */
function unaryMethod<M extends keyof StorageMethods>(client: grpc.Client, method: M): Unary<M> {
  const fn: unknown = Reflect.get(client, method);
  if (typeof fn !== 'function') throw new Error(`storage ${method}: the client has no such method`);
  return fn.bind(client) as Unary<M>;
}

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

/** Vault's pb.Storage service as a client. Errors come back in the reply's err field. */
export class GrpcStorage implements Storage {
  constructor(
    private readonly client: grpc.Client,
    private readonly metadata: () => grpc.Metadata,
    private readonly timeoutMs = 30_000,
  ) {}

  private call<M extends keyof StorageMethods>(method: M, req: StorageMethods[M]['req']): Promise<StorageMethods[M]['reply']> {
    const signal = requestSignal.getStore();
    if (signal?.aborted) return Promise.reject(new RequestCancelled());
    let fn: Unary<M>;
    try {
      fn = unaryMethod(this.client, method);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      const onAbort = (): void => inFlight.cancel();
      const inFlight = fn(req, this.metadata(), { deadline: Date.now() + this.timeoutMs }, (e, r) => {
        signal?.removeEventListener('abort', onAbort);
        if (e && signal?.aborted) reject(new RequestCancelled());
        else if (e) reject(new Error(`storage ${method}: ${e.details || e.message}`, { cause: e }));
        else if (r?.err) reject(new Error(`storage ${method}: ${r.err}`));
        else resolve(r ?? {});
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
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
