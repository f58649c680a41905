// The Key Management engine's declaration for the registry (../engines.ts).
import type { Engine } from '../engine';
import { keymgmtPaths, KEYMGMT_HELP } from './index';

/** The keymgmt engine's declaration for the engine registry. */
export const keymgmtEngine: Engine = {
  name: 'keymgmt',
  help: KEYMGMT_HELP,
  specialPaths: { root: [], unauthenticated: [], local_storage: [], seal_wrap_storage: ['key/', 'kms/'] },
  create: ({ storage }) => ({ paths: keymgmtPaths(storage) }),
};
