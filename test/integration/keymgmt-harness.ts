// Driving a keymgmt mount through SecretsBackend, as Vault would, and reading what Vault
// keeps in its storage (the test's independent view of the key material).
import { createDecipheriv, createPrivateKey, type KeyObject } from 'node:crypto';
import { SecretsBackend } from '../../src/secrets/backend';
import { toReply } from '../../src/secrets/plugin';
import { MemoryStorage } from '../../src/storage/storage';
import { createLogger } from '../../src/goplugin/log';

export type Reply = { data?: any; error?: string; err?: { err_type: number; err_msg: string; err_code: number }; warnings?: string[] };

export function keymgmtMount() {
  const store = new MemoryStorage();
  const be = new SecretsBackend(store, createLogger({ level: 'error', sink: () => undefined }), 'keymgmt');
  async function call(op: string, path: string, data: Record<string, unknown> = {}): Promise<Reply> {
    let rep;
    try { rep = toReply(await be.handle(op as never, path, data, { displayName: 'token', mountPoint: 'keymgmt/' })); }
    catch (e) { rep = toReply(undefined, e); }
    const out: Reply = {};
    if ((rep as any).err) out.err = (rep as any).err;
    const resp = (rep as any).response;
    if (resp?.data) { const d = JSON.parse(resp.data); if (d.error) out.error = d.error; else out.data = d; }
    if (resp?.warnings?.length) out.warnings = resp.warnings;
    return out;
  }
  async function ok(op: string, path: string, data: Record<string, unknown> = {}): Promise<any> {
    const r = await call(op, path, data);
    if (r.error || r.err) throw new Error(`${op} ${path}: ${r.error ?? r.err?.err_msg}`);
    return r.data;
  }
  /** The error text of a failed call, whatever status it carries. */
  const failure = (r: Reply) => r.error ?? r.err?.err_msg;
  /** Key material of one version, from Vault's storage. */
  function material(name: string, version = 1): { aes?: Buffer; priv?: KeyObject } {
    const k = JSON.parse(store.data.get(`key/${name}`)!.toString());
    const v = k.versions[String(version)].key as string;
    return k.type === 'aes256-gcm96' ? { aes: Buffer.from(v, 'base64') } : { priv: createPrivateKey(v) };
  }
  return { store, be, call, ok, failure, material };
}

export function aesGcmOpen(key: Buffer, iv: Buffer, body: Buffer, aad: Buffer): Buffer {
  const d = createDecipheriv('aes-256-gcm', key, iv);
  d.setAAD(aad);
  d.setAuthTag(body.subarray(body.length - 16));
  return Buffer.concat([d.update(body.subarray(0, body.length - 16)), d.final()]);
}
