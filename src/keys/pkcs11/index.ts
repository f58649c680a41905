// PKCS#11 HSMs through pkcs11js. One loaded module per library path (modules.ts); per key
// a pool of at most max_parallel sessions (session-pool.ts). Operations run on libuv's
// thread pool (the *Async calls: sign, encrypt, decrypt, key generation), so parallel
// sessions really run in parallel and a slow token never stalls the event loop. pkcs11js
// has no async form of the short bookkeeping calls (open session, login, find objects,
// read attributes, *Init, C_GenerateRandom); those stay synchronous.
//   library.ts     pkcs11js, loaded on first use; the CKR_ codes acted on
//   modules.ts     loading, sharing, re-initialising and releasing modules
//   slots.ts       finding the token; the pkcs11-slots listing
//   login.ts       the per-process login and the PIN check behind it
//   session-pool.ts  sessions per key
//   discovery.ts   finding (or generating) the key on the token
//   mechanisms.ts  mechanism names, curve OIDs, PSS/OAEP hash parameters
//   operations.ts  sign, AES-GCM, decrypt on a session
//   key.ts         Pkcs11Key: the ManagedKey, with recovery after token resets
import type { KeyBackend } from '../backend';
import { Pkcs11Key } from './key';
import { PKCS11_FIELDS } from './fields';

export { Pkcs11Key } from './key';
export { listSlots } from './slots';

/** PKCS#11 managed keys: the module named by `library`, loaded only when a key is opened. */
export const backend: KeyBackend = { type: 'pkcs11', fields: PKCS11_FIELDS, open: (p) => Pkcs11Key.open(p.name, p.fields, p.common) };
