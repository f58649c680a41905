// Finding a token: by slot id or by token label; and the slot listing behind the
// `vault-plugin-ts pkcs11-slots <library>` command.
import { KeyError, keyInvalid } from '../errors';
import type { BackendConfig } from '../config';
import type { Handle, Pkcs11Types } from './library';
import { loadModule, releaseModule } from './modules';

/** Slots with a token present: what `vault-plugin-ts pkcs11-slots <library>` prints. */
export function listSlots(library: string): Array<{ slot: string; label: string; model: string; serial: string }> {
  if (!library) throw keyInvalid('usage: vault-plugin-ts pkcs11-slots /path/to/pkcs11-module.so');
  const { path, module: m } = loadModule(library, true);
  try {
    return m.p.C_GetSlotList(true).map((h) => {
      const t = m.p.C_GetTokenInfo(h);
      return { slot: '0x' + h.readBigUInt64LE(0).toString(16), label: t.label.trim(), model: t.model.trim(), serial: t.serialNumber.trim() };
    });
  } finally {
    releaseModule(path);
  }
}

/** The `slot` field as a slot id: decimal or 0x hex, else an `invalid` KeyError (BigInt alone would take "-1" or " 1 "). */
export function parseSlotId(v: unknown): bigint {
  const s = String(v);
  if (!/^(0x[0-9a-f]+|\d+)$/i.test(s)) throw keyInvalid('slot must be a slot id: decimal or 0x hex (or give token_label instead)');
  return BigInt(s);
}

/** The slot holding the configured token (`slot`, or else `token_label`); a not_found KeyError if none. */
export function findSlot(p: Pkcs11Types.PKCS11, cfg: BackendConfig, keyName: string): Handle {
  const slots = p.C_GetSlotList(true);
  if (cfg.slot !== undefined) {
    const want = String(cfg.slot);
    const id = parseSlotId(want);
    const s = slots.find((h) => h.readBigUInt64LE(0) === id || (h.length === 4 && BigInt(h.readUInt32LE(0)) === id));
    if (!s) throw new KeyError('not_found', `pkcs11 key "${keyName}": no token in slot ${want}`);
    return s;
  }
  const labelOf = (h: Handle) => {
    try {
      return p.C_GetTokenInfo(h).label.trim();
    } catch {
      return undefined;
    }
  }; // a vanished token
  const s = slots.find((h) => labelOf(h) === cfg.token_label);
  if (!s) throw new KeyError('not_found', `pkcs11 key "${keyName}": no token labelled "${cfg.token_label}"`);
  return s;
}
