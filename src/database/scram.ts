// password_authentication=scram-sha-256: the plugin sends PostgreSQL a SCRAM verifier
// instead of the clear password, so the password never appears in server logs or
// pg_stat_statements. The format is what PostgreSQL itself stores in pg_authid.
import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

const ITERATIONS = 4096; // PostgreSQL's scram_iterations default

// RFC 4013 SASLprep, as PostgreSQL applies it: map non-ASCII spaces to space, drop
// "mapped to nothing" characters, NFKC; if prohibited characters remain, PostgreSQL
// uses the raw bytes instead, and so do we.
const MAP_TO_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g;
// biome-ignore lint/suspicious/noMisleadingCharacterClass: each joiner and variation selector is removed on its own, as RFC 3454 B.1 lists them
const MAP_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200C\u200D\u2060\uFE00-\uFE0F\uFEFF]/g;
// biome-ignore lint/suspicious/noMisleadingCharacterClass: without the u flag the surrogate range matches UTF-16 code units, so a password with any astral character falls back to raw bytes (most are unassigned in Unicode 3.2, which SASLprep prohibits)
const PROHIBITED = /[\u0000-\u001F\u007F-\u009F\u0340\u0341\u200E\u200F\u202A-\u202E\u206A-\u206F\uE000-\uF8FF\uFFF9-\uFFFD\uD800-\uDFFF]/;

/** The password as SCRAM hashes it: SASLprep (RFC 4013) where it is not plain ASCII. */
export function saslprep(password: string): Buffer {
  if (/^[\x20-\x7e]*$/.test(password)) return Buffer.from(password, 'utf8');
  const prepped = password.replace(MAP_TO_SPACE, ' ').replace(MAP_TO_NOTHING, '').normalize('NFKC');
  if (PROHIBITED.test(prepped) || prepped.length === 0) return Buffer.from(password, 'utf8');
  return Buffer.from(prepped, 'utf8');
}

/** The verifier PostgreSQL stores; PBKDF2 runs on the thread pool, not the event loop. */
export async function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = ITERATIONS): Promise<string> {
  const salted = await pbkdf2Async(saslprep(password), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** The verifier and each secret part of it (salt, StoredKey, ServerKey), for redaction. */
export function scramSecrets(verifier: string): string[] {
  const m = /^SCRAM-SHA-256\$\d+:([^$]+)\$([^:]+):(.+)$/.exec(verifier);
  return m ? [verifier, m[1], m[2], m[3]] : [verifier];
}
