// Native addons (pkcs11js) inside the single executable. A SEA can only require
// built-in modules, so the build stores each .node file as a SEA asset and bundles a
// call to loadNativeAddon() in place of the require. The addon is written to a fresh
// 0700 directory, loaded with process.dlopen, and unlinked (a loaded library stays mapped).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const loaded = new Map<string, unknown>();

interface SeaApi {
  isSea(): boolean;
  getRawAsset(k: string): ArrayBuffer;
  getAsset(k: string, enc: string): string;
}

/**
 * An asset's bytes. The build stores assets other than native addons brotli-compressed as
 * <name>.br (Vault hashes the whole executable at each launch: smaller is quicker).
 */
function assetBytes(api: SeaApi, asset: string): Buffer {
  let packed: ArrayBuffer | undefined;
  try {
    packed = api.getRawAsset(`${asset}.br`);
  } catch {
    return Buffer.from(api.getRawAsset(asset));
  }
  const { brotliDecompressSync } = require('node:zlib') as typeof import('node:zlib');
  return brotliDecompressSync(Buffer.from(packed));
}

/** node:sea when running as the single executable; undefined elsewhere (tests, node dist/main.js). */
function sea(): SeaApi | undefined {
  try {
    const api = require('node:sea') as SeaApi;
    return api.isSea() ? api : undefined;
  } catch {
    return undefined;
  }
}

/** Load a native addon: from the executable's assets (written to a private temp dir) or, outside it, from `devPath`. */
export function loadNativeAddon(asset: string, devPath: string): unknown {
  const hit = loaded.get(asset);
  if (hit) return hit;
  const api = sea();
  let exports: unknown;
  if (api) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vault-plugin-ts-native-'));
    const file = path.join(dir, asset);
    try {
      fs.writeFileSync(file, Buffer.from(api.getRawAsset(asset)), { mode: 0o500 });
      const mod = { exports: {} as unknown };
      process.dlopen(mod as NodeJS.Module, file);
      exports = mod.exports;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  } else {
    exports = require(devPath);
  }
  loaded.set(asset, exports);
  return exports;
}

/**
 * JavaScript kept out of the main bundle (the cloud KMS SDKs: megabytes that every plugin
 * start would otherwise compile and hold in memory). In the executable each is a SEA
 * asset, compiled on first use; elsewhere it is an ordinary require.
 */
export function loadLazyBundle(asset: string, devPath: string): unknown {
  const hit = loaded.get(asset);
  if (hit) return hit;
  const api = sea();
  let exports: unknown;
  if (api) {
    const vm = require('node:vm') as typeof import('node:vm');
    const filename = `/vault-plugin-ts/${asset}`;
    const fn = vm.compileFunction(assetBytes(api, asset).toString('utf8'), ['exports', 'require', 'module', '__filename', '__dirname'], { filename });
    const mod = { exports: {} as unknown };
    // Lazy bundles are self-contained: their require only ever sees built-in modules.
    fn(mod.exports, require, mod, filename, '/vault-plugin-ts');
    exports = mod.exports;
  } else {
    exports = require(devPath);
  }
  loaded.set(asset, exports);
  return exports;
}

/**
 * Raw bytes shipped with the executable (e.g. a WebAssembly module): a SEA asset in the
 * executable, the file from node_modules elsewhere. The build lists each such asset.
 */
export function loadAssetBytes(asset: string, devPath: () => string): Buffer {
  const api = sea();
  return api ? assetBytes(api, asset) : fs.readFileSync(devPath());
}
