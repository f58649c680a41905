// A test-only secrets engine: it issues leased tokens and says what Vault asked of it.
// It is added as any engine is, this folder plus one registry line (registerEngine in
// the test), and exercises every part of the Engine interface through the real binding.
import type { Engine } from '../../../src/secrets/engine';
import type { PathDef } from '../../../src/secrets/framework';
import { UserError } from '../../../src/secrets/framework';
import { secretResponse, type SecretType } from '../../../src/secrets/lease';

/** What every mount of the engine was asked, for the test to read. */
export const seen = { periodic: 0, invalidated: [] as string[], cleanups: 0, existence: [] as Array<{ name: string; value: string; displayName: string }> };

const token: SecretType = {
  type: 'toy_token',
  defaultTtl: 60,
  // A renewal grants what the client asked (the increment) up to 5 minutes, as Vault's engines cap at a max TTL.
  async renew(req) {
    if (!(await req.storage.get(`tokens/${String(req.secret.internal.id)}`))) throw new UserError('token was revoked');
    return { secret: { ...req.secret, ttl: Math.min(req.secret.increment || token.defaultTtl, 300) } };
  },
  async revoke(req) {
    await req.storage.delete(`tokens/${String(req.secret.internal.id)}`);
    return undefined;
  },
};

/** A second type that cannot be renewed. */
const once: SecretType = { type: 'toy_once', defaultTtl: 30, revoke: async () => undefined };

export const leaseEngine: Engine = {
  name: 'toy-lease',
  help: 'A test engine that leases tokens.',
  specialPaths: { root: [], unauthenticated: ['public'], local_storage: [], seal_wrap_storage: ['tokens/'] },
  create() {
    const paths: PathDef[] = [
      {
        pattern: 'creds/(?<name>\\w+)',
        fields: { name: { type: 'string', description: 'token name' } },
        operations: {
          read: async (req) => {
            const id = `${req.data.str('name')}-${Math.random().toString(36).slice(2, 10)}`;
            await req.storage.put(`tokens/${id}`, Buffer.from('{}'));
            return secretResponse(token, { token: `t.${id}` }, { id });
          },
        },
        synopsis: 'Issue a leased token.',
        description: 'Issue a leased token.',
      },
      {
        // An existence check that reads the request's body as well as its URL, as Vault's SDK allows.
        pattern: 'things/(?<name>\\w+)',
        fields: {
          name: { type: 'string', description: 'thing name' },
          value: { type: 'string', description: 'present or not' },
          n: { type: 'int', description: 'a number' },
        },
        existence: async (req) => {
          seen.existence.push({ name: req.data.str('name'), value: req.data.str('value'), displayName: req.displayName ?? '' });
          return req.data.str('value') === 'present';
        },
        operations: { create: async () => ({ data: { op: 'create' } }), update: async () => ({ data: { op: 'update' } }) },
        synopsis: 'A path with an existence check.',
        description: 'A path with an existence check.',
      },
      {
        pattern: 'once',
        fields: {},
        operations: { read: async () => secretResponse(once, { value: 1 }) },
        synopsis: 'A lease that cannot be renewed.',
        description: 'A lease that cannot be renewed.',
      },
    ];
    return {
      secrets: [token, once],
      paths,
      periodic: async () => {
        seen.periodic++;
      },
      invalidate: (key) => {
        seen.invalidated.push(key);
      },
      cleanup: async () => {
        seen.cleanups++;
      },
    };
  },
};
