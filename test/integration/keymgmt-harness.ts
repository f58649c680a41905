// A keymgmt mount driven as Vault would (test/support/backend.ts), and what Vault keeps
// in its storage (the test's independent view of the key material).
import { createDecipheriv, createPrivateKey, type KeyObject } from 'node:crypto';
import { backendMount } from '../support/backend';

export type { Reply } from '../support/backend';

export function keymgmtMount() {
  const { store, be, call, ok, failure } = backendMount('keymgmt');
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
