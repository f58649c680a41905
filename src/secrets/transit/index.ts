// Transit: encryption as a service, signing and HMAC, with Vault's API and vault:vN: formats.
import type { ManagedKeys } from '../managed-keys';
import type { Storage } from '../../storage/storage';
import type { PathDef } from '../framework';
import { Policies } from './store';
import { transitContext, type Transit } from './context';
import { keyPaths } from './keys';
import { cryptPaths } from './crypt';
import { signPaths } from './sign';
import { toolPaths } from './tools';
import { lifecyclePaths } from './lifecycle';
import { certificatePaths } from './certificates';
import { derivePaths } from './derive';
import { byokPaths } from './byok';

export { autoRotate } from './keys';

/** A mount's transit key store and every transit path, sharing one context. */
export function transit(storage: Storage, managed: ManagedKeys): { ctx: Transit; paths: PathDef[] } {
  const ctx = transitContext(new Policies(storage), managed);
  return {
    ctx,
    paths: [
      ...keyPaths(ctx),
      ...cryptPaths(ctx),
      ...signPaths(ctx),
      ...toolPaths(managed),
      ...lifecyclePaths(ctx),
      ...certificatePaths(ctx),
      ...derivePaths(ctx),
      ...byokPaths(ctx),
    ],
  };
}
