// random[/<bytes>], hash[/<algorithm>]
import { randomBytes } from 'node:crypto';
import { UserError, type PathDef } from '../framework';
import { b64 } from './envelope';
import { hashInput } from './signature';
import type { ManagedKeys } from '../managed-keys';

/** random[/<bytes>] and hash[/<algorithm>]. */
export function toolPaths(managed: ManagedKeys): PathDef[] {
  return [
    {
      pattern: 'random(?:/(?<urlbytes>\\d+))?',
      fields: {
        urlbytes: { type: 'int', description: 'Number of bytes, in the path.' },
        bytes: { type: 'int', default: 32, description: 'Number of bytes (1-1048576).' },
        format: { type: 'string', default: 'base64', allowed: ['base64', 'hex'], description: 'Output encoding.' },
        source: { type: 'string', default: 'platform', description: '"platform" (the OS), or the name of a managed key whose backend supplies the bytes.' },
      },
      synopsis: "Random bytes from the operating system or from a managed key's HSM/KMS.",
      description: 'Returns random_bytes.',
      operations: {
        update: async (r) => {
          const n = r.data.has('urlbytes') ? r.data.int('urlbytes') : r.data.int('bytes');
          if (n < 1 || n > 1024 * 1024) throw new UserError('bytes must be between 1 and 1048576');
          const src = r.data.str('source');
          const bytes = src === 'platform' ? randomBytes(n) : await (await managed.byName(src)).random(n);
          return { data: { random_bytes: bytes.toString(r.data.str('format') as 'hex' | 'base64') } };
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
