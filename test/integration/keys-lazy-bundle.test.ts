// The cloud SDKs cost nothing at plugin start: in the built executable the cloud key
// backends (and keymgmt's providers) are separate bundles, loaded when first used, and
// the main bundle holds none of their code. Reads dist/metafile.json, written by
// `node scripts/build.mjs` (scripts/test.sh builds before testing).
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';

const metafile = path.resolve(__dirname, '../../dist/metafile.json');
const CLOUD = ['awskms', 'gcpckms', 'azurekeyvault'];
const SDKS = /node_modules\/(@aws-sdk\/client-kms|@smithy\/node-http-handler|@google-cloud\/kms|google-gax|@azure\/keyvault-keys|@azure\/identity)\//;

describe('lazily loaded key backends in the bundle', () => {
  const meta = () => {
    if (!fs.existsSync(metafile)) throw new Error('dist/metafile.json is missing: run node scripts/build.mjs first');
    return JSON.parse(fs.readFileSync(metafile, 'utf8')) as { metafiles: Record<string, { inputs: Record<string, unknown> }> };
  };

  it('the main bundle holds no cloud SDK and no cloud backend code, only the loaders of their bundles', () => {
    const inputs = Object.keys(meta().metafiles['main.js'].inputs);
    expect(inputs.filter((i) => SDKS.test(i))).toEqual([]);
    const cloudCode = inputs.filter(
      (i) =>
        !i.startsWith('lazy-adapter:') &&
        (/^src\/keys\/clients\/(aws|gcp|azure)\.ts$/.test(i) || CLOUD.some((c) => i === `src/keys/${c}.ts` || i === `src/secrets/keymgmt/providers/${c}.ts`)),
    );
    expect(cloudCode).toEqual([]);
    for (const c of CLOUD) expect(inputs).toContain(`lazy-adapter:src/keys/${c}.ts`);
  });

  it('each cloud backend bundle holds its backend and its SDK', () => {
    const m = meta().metafiles;
    for (const c of CLOUD) {
      for (const prefix of ['keys', 'keymgmt']) {
        const inputs = Object.keys(m[`lazy/${prefix}-${c}.js`].inputs);
        expect(
          inputs.some((i) => SDKS.test(i)),
          `${prefix}-${c}`,
        ).toBe(true);
      }
      expect(Object.keys(m[`lazy/keys-${c}.js`].inputs)).toContain(`src/keys/${c}.ts`);
    }
  });
});
