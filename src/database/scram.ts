// password_authentication=scram-sha-256: the plugin sends PostgreSQL a SCRAM verifier
// instead of the clear password, so the password never appears in server logs or
// pg_stat_statements. The format is what PostgreSQL itself stores in pg_authid.
import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

const ITERATIONS = 4096; // PostgreSQL's scram_iterations default

/**
 * The password as SCRAM hashes it, as PostgreSQL's pg_saslprep (libpq and the server) does:
 * RFC 4013 SASLprep; where that fails (a prohibited or unassigned character, mixed
 * directions) or leaves nothing, the raw UTF-8 bytes. test/integration/saslprep.test.ts
 * compares the result with verifiers PostgreSQL computes itself.
 */
export function saslprep(password: string): Buffer {
  if (/^[\x20-\x7e]*$/.test(password)) return Buffer.from(password, 'utf8');
  try {
    // Loaded on the first non-ASCII password: it unpacks its Unicode tables when loaded.
    const rfc4013 = require('@mongodb-js/saslprep') as (input: string) => string;
    const prepped = rfc4013(password);
    return Buffer.from(prepped.length ? prepped : password, 'utf8');
  } catch {
    return Buffer.from(password, 'utf8');
  }
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
