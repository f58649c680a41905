// Managed-key configuration checks found missing in review 13.
import { describe, expect, it } from 'vitest';
import { Pkcs11Key } from '../../src/keys/pkcs11';
import { parseKeyConfig } from '../../src/keys/config';

describe('pkcs11 key_id', () => {
  const open = (key_id: string) => {
    const p = parseKeyConfig('pkcs11', 'k', { library: '/nonexistent/module.so', token_label: 't', pin: '1234', key_id });
    return Pkcs11Key.open('k', p.fields, p.common);
  };
  it('must be hex bytes: a typo is refused, not read as the bytes before it (which would select another key)', async () => {
    // Buffer.from(s, 'hex') stops at the first non-hex pair: "12zz" was CKA_ID 0x12, "zz" the empty id.
    for (const bad of ['zz', '12zz', '0x', '123', '0x12 34', 'g0'])
      await expect(open(bad), bad).rejects.toMatchObject({ kind: 'invalid', message: expect.stringMatching(/key_id must be hex/) });
    // Well-formed ids get as far as the module (refused here by the operator's list).
    for (const good of ['12', '0x12AB', 'deadbeef']) await expect(open(good), good).rejects.toThrow(/PLUGIN_PKCS11_LIBRARIES/);
  });
});
