// random[/<bytes>], hash[/<algorithm>]
import { randomBytes } from 'node:crypto';
import { UserError, type PathDef } from '../framework';
import { b64 } from './envelope';
import { hashInput } from './signature';
import type { ManagedKeys } from '../managed-keys';
import { NAME_PATTERN } from '../../schema';

/** Vault's sources of random bytes; any other source names a managed key. */
const VAULT_SOURCES = ['platform', 'seal', 'all'];
/** Vault's cap on one random request (128 KiB; more is a 400). */
const MAX_RANDOM_BYTES = 128 * 1024;

/** random[/<bytes>] and hash[/<algorithm>]. */
export function toolPaths(managed: ManagedKeys): PathDef[] {
  return [
    {
      // As Vault: random[/<source>][/<bytes>]; a lone segment is the source when it names one, else the byte count.
      pattern: `random(?:/(?<urlsource>${NAME_PATTERN}))?(?:/(?<urlbytes>\\d+))?`,
      fields: {
        urlsource: { type: 'string', description: 'Source (platform, seal, all or a managed key name), or the number of bytes, in the path.' },
        urlbytes: { type: 'int', description: 'Number of bytes, in the path.' },
        bytes: { type: 'int', default: 32, description: `Number of bytes (1-${MAX_RANDOM_BYTES}).` },
        format: { type: 'string', default: 'base64', allowed: ['base64', 'hex'], description: 'Output encoding.' },
        source: {
          type: 'string',
          default: 'platform',
          description:
            '"platform" (the OS), "seal" or "all" (as Vault; here both are the OS, with a warning: a plugin has no seal entropy), or the name of a managed key whose backend supplies the bytes.',
        },
      },
      synopsis: "Random bytes from the operating system or from a managed key's HSM/KMS.",
      description: 'Returns random_bytes.',
      operations: {
        update: async (r) => {
          let src = r.data.str('source');
          let n = r.data.int('bytes');
          const urlSource = r.data.str('urlsource');
          if (r.data.has('urlbytes')) {
            n = r.data.int('urlbytes');
            if (urlSource) src = urlSource;
          } else if (urlSource) {
            if (VAULT_SOURCES.includes(urlSource) || !/^\d+$/.test(urlSource)) src = urlSource;
            else n = Number(urlSource);
          }
          if (n < 1) throw new UserError("'bytes' cannot be less than 1");
          if (n > MAX_RANDOM_BYTES) throw new UserError(`'bytes' should be less than ${MAX_RANDOM_BYTES}`);
          const warnings: string[] = [];
          let bytes: Buffer;
          if (VAULT_SOURCES.includes(src)) {
            // Vault mixes in its seal's entropy (Enterprise entropy augmentation) for seal and
            // all; without it Vault, too, uses the platform's, and says so for seal.
            if (src !== 'platform') warnings.push('no seal/entropy augmentation available, using platform entropy source');
            bytes = randomBytes(n);
          } else bytes = await (await managed.byName(src)).random(n);
          return { data: { random_bytes: bytes.toString(r.data.str('format') as 'hex' | 'base64') }, ...(warnings.length ? { warnings } : {}) };
        },
      },
    },
    {
      pattern: 'hash(?:/(?<urlalgorithm>[\\w-]+))?',
      fields: {
        urlalgorithm: { type: 'string', description: 'Algorithm, in the path.' },
        input: { type: 'string', required: true, description: 'Base64 input.' },
        algorithm: { type: 'string', default: 'sha2-256', description: 'sha2-224, sha2-256, sha2-384, sha2-512, sha3-224, sha3-256, sha3-384 or sha3-512.' },
        format: { type: 'string', default: 'hex', allowed: ['hex', 'base64'], description: 'Output encoding.' },
      },
      synopsis: 'Hash input.',
      description: 'Returns sum.',
      operations: {
        update: async (r) => ({
          data: {
            sum: hashInput(r.data.str('urlalgorithm') || r.data.str('algorithm'), b64(r.data.get('input'), 'input')).toString(
              r.data.str('format') as 'hex' | 'base64',
            ),
          },
        }),
      },
    },
  ];
}
