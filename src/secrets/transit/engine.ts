// The transit engine's declaration for the registry (../engines.ts).
import type { Engine } from '../engine';
import { transit, autoRotate } from './index';

/** Transit for the engine registry: seal-wrapped policies, auto-rotation on Vault's periodic call, cache invalidation per key. */
export const transitEngine: Engine = {
  name: 'transit',
  help: "vault-plugin-ts, transit engine: encryption as a service, signing and HMAC, with Vault's transit API.",
  specialPaths: { root: [], unauthenticated: [], local_storage: [], seal_wrap_storage: ['policy/'] },
  create({ storage, managedKeys, log }) {
    // The hooks keep only the context: the path declarations go to the router.
    const { ctx, paths } = transit(storage, managedKeys);
    return {
      paths,
      // Keys with auto_rotate_period are rotated by Vault's periodic function, as Vault's transit does.
      async periodic() {
        const rotated = await autoRotate(ctx);
        if (rotated.length) log.info('auto-rotated transit keys', { keys: rotated.join(',') });
      },
      invalidate(key) {
        if (key.startsWith('policy/')) ctx.policies.invalidate(key.slice('policy/'.length));
      },
    };
  },
};
