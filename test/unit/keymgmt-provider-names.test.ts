// keymgmt's provider-side names (Google crypto key ids, Azure key names) and the endpoint a
// replica region of an AWS multi-Region key is reached at.
import { describe, expect, it } from 'vitest';
import { azureKeyName, gcpCryptoKeyId } from '../../src/secrets/keymgmt/providers/names';
import { endpointFor } from '../../src/secrets/keymgmt/providers/awskms';

describe('provider names', () => {
  it('a name that fits maps as it always has: the distribution name, other characters as "-"', () => {
    const d = { key: 'crdb_cmek.v1', name: 'crdb_cmek-v1-1700000000' };
    expect(gcpCryptoKeyId(d)).toBe('crdb_cmek-v1-1700000000');
    expect(azureKeyName(d)).toBe('crdb-cmek-v1-1700000000');
    const at63 = { key: 'k', name: `${'a'.repeat(52)}-1700000000` };
    expect(gcpCryptoKeyId(at63)).toBe(at63.name);
  });

  it('a longer name is cut, ends with a hash, and is distinct for distinct keys (however long their common prefix), stable, and valid', () => {
    const prefix = 'p'.repeat(126);
    const a = { key: `${prefix}-a`, name: `${prefix}-a-1700000000` };
    // Same distribution name, different Vault key ('.' and '-' both map to '-').
    const b = { key: `${prefix}.a`, name: `${prefix}-a-1700000000` };
    for (const [fn, max, re] of [
      [gcpCryptoKeyId, 63, /^[a-zA-Z0-9_-]{1,63}$/],
      [azureKeyName, 127, /^[a-zA-Z0-9-]{1,127}$/],
    ] as const) {
      const [ia, ib] = [fn(a), fn(b)];
      expect(ia).toMatch(re);
      expect(ib).toMatch(re);
      expect(ia).toHaveLength(max);
      expect(ia).not.toBe(ib);
      expect(fn({ ...a })).toBe(ia);
      expect(ia).toMatch(/-[0-9a-f]{12}$/);
    }
  });
});

describe('replica region endpoints', () => {
  it("a regional endpoint's region is replaced; any other endpoint (an emulator, a proxy) is used as is", () => {
    expect(endpointFor(undefined, 'us-east-1', 'eu-west-1')).toBeUndefined();
    expect(endpointFor('https://kms.us-east-1.amazonaws.com', 'us-east-1', 'eu-west-1')).toBe('https://kms.eu-west-1.amazonaws.com');
    expect(endpointFor('https://kms-fips.us-east-1.amazonaws.com/', 'us-east-1', 'eu-west-1')).toBe('https://kms-fips.eu-west-1.amazonaws.com/');
    expect(endpointFor('http://127.0.0.1:4566', 'us-east-1', 'eu-west-1')).toBe('http://127.0.0.1:4566');
    expect(endpointFor('https://kms.us-east-1.amazonaws.com', 'us-east-1', 'us-east-1')).toBe('https://kms.us-east-1.amazonaws.com');
    // Only whole host-name labels: a host that merely contains the text is not rewritten.
    expect(endpointFor('https://my-us-east-1-proxy.example', 'us-east-1', 'eu-west-1')).toBe('https://my-us-east-1-proxy.example');
  });
});
