// Issuing with a stored CA key uses no API Node has deprecated: KeyObject.from() of a
// non-extractable CryptoKey (DEP0204 on Node 24) would become an error in a later Node.
import { afterAll, describe, expect, it } from 'vitest';
import { backendMount } from '../support/backend';

const warnings: Error[] = [];
const onWarning = (w: Error) => warnings.push(w);
process.on('warning', onWarning);
afterAll(() => {
  process.off('warning', onWarning);
});

describe('PKI issue with a stored CA key', () => {
  it.each(['ec', 'rsa'])('%s CA: no deprecation warning', async (keyType) => {
    const { ok } = backendMount('pki');
    await ok('update', 'root/generate/internal', { common_name: 'dep root', key_type: keyType, key_bits: keyType === 'rsa' ? 2048 : 256, ttl: '24h' });
    await ok('update', 'roles/r', { allow_any_name: true, key_type: 'ec', max_ttl: '1h' });
    const issued = await ok('update', 'issue/r', { common_name: 'a.example' });
    expect(issued.certificate).toMatch(/^-----BEGIN CERTIFICATE-----/);
    await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    expect(warnings.map((w) => `${w.name}: ${w.message}`)).toEqual([]);
  });
});
