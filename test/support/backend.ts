// Driving one secrets mount (SecretsBackend) in-process as Vault would, and reading each
// reply as Vault gets it from the gRPC binding (toReply): the shared harness of the
// backend-level tests.
import { SecretsBackend, type BackendOperation } from '../../src/secrets/backend';
import { toReply } from '../../src/secrets/plugin';
import { MemoryStorage, type Storage } from '../../src/storage/storage';
import { createLogger } from '../../src/goplugin/log';
import { beforeEach } from 'vitest';

/** A reply as Vault reads it: response data, a 400's message (data.error), Vault's error (err), warnings. */
export type Reply = { data?: any; error?: string; err?: { err_type: number; err_msg: string; err_code: number }; warnings?: string[] }; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A logger that says nothing (tests read replies, not logs). */
export const quietLog = createLogger({ level: 'error', sink: () => undefined });

/** One request to `be`, answered as the binding would answer Vault. */
export async function replyOf(
  be: SecretsBackend,
  op: string,
  path: string,
  data: Record<string, unknown>,
  mountPoint: string,
  displayName = 'token',
): Promise<Reply> {
  let rep: ReturnType<typeof toReply>;
  try {
    rep = toReply(await be.handle(op as BackendOperation, path, data, { displayName, mountPoint }));
  } catch (e) {
    rep = toReply(undefined, e);
  }
  const out: Reply = {};
  if (rep.err) out.err = rep.err as Reply['err'];
  const resp = rep.response as { data?: string; warnings?: string[] } | undefined;
  if (resp?.data) {
    const d = JSON.parse(resp.data);
    if (d?.error) out.error = d.error;
    else if (d) out.data = d;
  }
  if (resp?.warnings?.length) out.warnings = resp.warnings;
  return out;
}

/** The data of a reply that must succeed; a failed one throws with its message. */
export function okData(r: Reply, op: string, path: string): any {
  // eslint-disable-line @typescript-eslint/no-explicit-any
  if (r.error || r.err) throw new Error(`${op} ${path}: ${r.error ?? r.err?.err_msg}`);
  return r.data;
}

/** The error text of a failed reply, whatever status it carries. */
export const failure = (r: Reply): string | undefined => r.error ?? r.err?.err_msg;

/** A mount of `engine` whose calls answer { data } or { error } (Vault's own errors as "<err_type>: <message>"). */
export function dataOrError(engine: string) {
  const { call } = backendMount(engine);
  return async (op: string, path: string, data: Record<string, unknown> = {}): Promise<{ data?: any; error?: string }> => {
    // eslint-disable-line @typescript-eslint/no-explicit-any
    const r = await call(op, path, data, '');
    if (r.err) return { error: `${r.err.err_type}: ${r.err.err_msg}` };
    return r.error ? { error: r.error } : { data: r.data };
  };
}

/** A mount of `engine` on its own storage, with `call` (any reply) and `ok` (data, or throw); `displayName` is the token's. */
/**
 * What Vault's SystemView says of a PKI mount tuned as Vault's PKI guide does
 * (`vault secrets tune -max-lease-ttl=87600h`): a CA may live ten years; the default lease
 * TTL stays Vault's 768h, which a certificate issued without a ttl gets.
 */
export const TUNED_MOUNT = { maxLeaseTtl: async () => 87600 * 3600, defaultLeaseTtl: async () => 768 * 3600 };

export function backendMount<S extends Storage = MemoryStorage>(engine: string, store: S = new MemoryStorage() as Storage as S, mountPoint = `${engine}/`) {
  const be = new SecretsBackend(store, quietLog, engine, TUNED_MOUNT);
  const call = (op: string, path: string, data: Record<string, unknown> = {}, displayName?: string) => replyOf(be, op, path, data, mountPoint, displayName);
  const ok = async (op: string, path: string, data: Record<string, unknown> = {}, displayName?: string) =>
    okData(await call(op, path, data, displayName), op, path);
  return { store, be, call, ok, failure };
}

/**
 * A fresh transit mount (the default engine) before each test of the calling file: `call`
 * (any reply) and `ok` (data, or throw), and `mount.store` / `mount.be` for the current one.
 */
export function transitPerTest() {
  const mount = { store: new MemoryStorage(), be: undefined as unknown as SecretsBackend };
  beforeEach(() => {
    mount.store = new MemoryStorage();
    mount.be = new SecretsBackend(mount.store, quietLog);
  });
  const call = (op: string, path: string, data: Record<string, unknown> = {}) => replyOf(mount.be, op, path, data, 'transit/');
  const ok = async (op: string, path: string, data: Record<string, unknown> = {}) => okData(await call(op, path, data), op, path);
  return { mount, call, ok };
}
