// Loaded PKCS#11 modules: one per resolved library path and process (one C_Initialize),
// shared by every key on it and finalized when the last key lets go.
import { keyInvalid } from '../errors';
import { allowedPkcs11Library } from '../operator';
import { pk, type Pkcs11Types } from './library';

/** A module this process has loaded and initialised. */
export interface LoadedModule {
  p: Pkcs11Types.PKCS11;
  refs: number;
  /** Per token: salted hash of the PIN that logged this process in (see login.ts). */
  logins: Map<string, { salt: Buffer; hash: Buffer }>;
  /** Bumped on every re-initialisation; sessions from an older generation are gone. */
  generation: number;
}
const modules = new Map<string, LoadedModule>();

/**
 * Load the module at `library`, or share it if this process already has it (by resolved
 * path: one file, one C_Initialize). On the request path (config writes, and keys opened
 * again after a restart or a cache drop) the operator's PLUGIN_PKCS11_LIBRARIES is checked
 * before anything is loaded, every time, and the checked resolved path is what gets loaded.
 * `byOperatorCli` skips the list for the `pkcs11-slots` command only: the operator runs that
 * by hand to find a module's tokens, and nothing reaches it through Vault's API.
 */
export function loadModule(library: string, byOperatorCli = false): { path: string; module: LoadedModule } {
  const resolved = byOperatorCli ? library : allowedPkcs11Library(library);
  let m = modules.get(resolved);
  if (!m) {
    const p = new (pk().PKCS11)();
    try {
      p.load(resolved);
      // The *Async calls run on libuv's thread pool: the library must use OS locking,
      // or concurrent sessions corrupt its memory (seen with SoftHSM2).
      p.C_Initialize({ flags: pk().CKF_OS_LOCKING_OK });
    } catch (e) {
      try {
        p.close();
      } catch {
        /* not loaded */
      }
      throw keyInvalid(`cannot load PKCS#11 library ${library}: ${e instanceof Error ? e.message : String(e)}`, e);
    }
    m = { p, refs: 0, logins: new Map(), generation: 0 };
    modules.set(resolved, m);
  }
  m.refs++;
  return { path: resolved, module: m };
}

/** C_Finalize + C_Initialize: every key on this module then re-opens sessions and logs in again. */
export function reinitialiseModule(m: LoadedModule): void {
  try {
    m.p.C_Finalize();
  } catch {
    /* already finalized */
  }
  m.p.C_Initialize({ flags: pk().CKF_OS_LOCKING_OK });
  m.logins.clear();
  m.generation++;
}

/** Drop one reference; the last one finalizes and unloads the module. */
export function releaseModule(path: string): void {
  const m = modules.get(path);
  if (m && --m.refs === 0) {
    modules.delete(path);
    try {
      m.p.C_Finalize();
      m.p.close();
    } catch {
      /* already gone */
    }
  }
}
