// SASLprep against PostgreSQL's own: the server hashes a plain password given to CREATE ROLE
// with pg_saslprep (the code libpq runs on the client), so a verifier we compute with the
// server's salt and iteration count must be byte-identical, or that user could not log in
// with psql or any libpq client.
import { describe, expect, it } from 'vitest';
import { scramVerifier } from '../../src/database/scram';
import { admin } from '../support/db';

const PASSWORDS: Array<[string, string]> = [
  ['ASCII', 'plain-Password_123'],
  ['Latin-1 and a no-break space (mapped to space)', 'pässwörd\u00A0x'],
  ['a soft hyphen (mapped to nothing)', 'pass\u00ADword'],
  ['full-width letters (NFKC)', '\uFF30\uFF41\uFF53\uFF53'],
  ['a ligature (NFKC)', 'of\uFB01ce'],
  ['an astral letter assigned in Unicode 3.2 (NFKC to "A")', 'x\u{1D400}y'],
  ['an emoji (unassigned in Unicode 3.2: raw bytes)', 'key\u{1F511}word'],
  ['a BMP character unassigned in Unicode 3.2 plus a compatibility character', '\u20BF\uFF21'],
  ['right-to-left then left-to-right (bidi rule: raw bytes)', '\u05D0\u05D1abc\uFF21'],
  ['right-to-left only (allowed)', '\u05D0\u05D1\u05D2'],
  ['a control character (prohibited: raw bytes)', 'a\u0007b\uFF21'],
  ['a private-use character (prohibited: raw bytes)', 'a\uE000\uFF21'],
  ['only characters mapped to nothing (empty: raw bytes)', '\u00AD\u200B'],
];

describe("SASLprep matches PostgreSQL's (scram-sha-256 verifiers)", () => {
  for (const [what, password] of PASSWORDS) {
    it(what, async () => {
      const role = `saslprep_${Math.random().toString(36).slice(2, 10)}`;
      const stored = await admin(async (c) => {
        await c.query(`SET password_encryption = 'scram-sha-256'`);
        await c.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password.replace(/'/g, "''")}'`);
        try {
          return (await c.query<{ rolpassword: string }>('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [role])).rows[0].rolpassword;
        } finally {
          await c.query(`DROP ROLE ${role}`);
        }
      });
      const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(stored);
      expect(m, stored).not.toBeNull();
      const ours = await scramVerifier(password, Buffer.from(m![2], 'base64'), Number(m![1]));
      expect(ours).toBe(stored);
    });
  }
});
