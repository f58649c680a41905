// The runtime's one multiplexing rule, used by both roles' bindings.
import { describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { SINGLE_INSTANCE, multiplexIdOf } from '../../src/goplugin/multiplex';

const md = (...ids: string[]) => {
  const m = new grpc.Metadata();
  for (const id of ids) m.add('multiplex_id', id);
  return m;
};

describe('multiplexIdOf', () => {
  it('single-instance protocol (Vault 1.8): every call is the one instance, whatever the metadata says', () => {
    expect(multiplexIdOf(md(), false)).toEqual({ id: SINGLE_INSTANCE });
    expect(multiplexIdOf(md('a', 'b'), false)).toEqual({ id: SINGLE_INSTANCE });
  });

  it("multiplexed protocol: exactly one non-empty id, as Vault's GetMultiplexIDFromContext", () => {
    expect(multiplexIdOf(md('mount-a'), true)).toEqual({ id: 'mount-a' });
    expect(multiplexIdOf(md(), true)).toEqual({ error: expect.stringMatching(/no multiplex_id/) });
    expect(multiplexIdOf(md('a', 'b'), true)).toEqual({ error: expect.stringMatching(/2 multiplex_id values/) });
    expect(multiplexIdOf(md(''), true)).toEqual({ error: expect.stringMatching(/empty multiplex_id/) });
  });
});
