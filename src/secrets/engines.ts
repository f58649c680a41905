// The secrets engines this plugin serves, one line each. A mount picks one by name
// (`vault secrets enable -options=engine=<name> vault-plugin-ts`; transit by default).
import type { Engine, SpecialPaths } from './engine';
import { transitEngine } from './transit/engine';
import { pkiEngine } from './pki/engine';
import { keymgmtEngine } from './keymgmt/engine';

const registry = new Map<string, Engine>();

/** Add an engine (the built-in ones below; a test may add its own). A name is registered once. */
export function registerEngine(engine: Engine): void {
  if (registry.has(engine.name)) throw new Error(`engine "${engine.name}" is registered already`);
  registry.set(engine.name, engine);
}

registerEngine(transitEngine);
registerEngine(pkiEngine);
registerEngine(keymgmtEngine);

/** The engine a mount gets when its options name none. */
export const DEFAULT_ENGINE = transitEngine.name;

/** The engine registered under `name`, if any. */
export function engineNamed(name: string): Engine | undefined {
  return registry.get(name);
}

/** The names of every registered engine, in registration order. */
export function engineNames(): string[] {
  return [...registry.keys()];
}

/** The special paths Vault gets for a mount of `engine`: its own, plus managed-keys/ seal-wrapped (every mount has managed keys). */
export function mountSpecialPaths(engine: Engine): SpecialPaths {
  const own = engine.specialPaths;
  return { ...own, seal_wrap_storage: ['managed-keys/', ...own.seal_wrap_storage] };
}
