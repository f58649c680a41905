// libpq's sslmode semantics on node-postgres (which has no allow/prefer fallback and no
// verify-ca), with sslrootcert/sslcert/sslkey given inline or as files.
import type * as tls from 'node:tls';
import type { SslMode } from '../config';
import { invalid } from '../errors';
import { FileReadError, readBoundedFile } from '../../util/files';
import type { Target } from './target';

const TLS_FILE_FIELDS = ['sslrootcert', 'sslcert', 'sslkey'] as const;

/**
 * The target with each of sslrootcert/sslcert/sslkey that names a file replaced by the
 * file's contents (inline PEM is kept). Read once, asynchronously, as a bounded regular
 * file: these paths come from the API, and /dev/zero, a FIFO or /proc/self/fd/1 must
 * neither exhaust memory nor block the process. Not read at all with sslmode=disable.
 */
export async function loadTlsFiles(t: Target): Promise<Target> {
  if (t.sslmode === 'disable') return t;
  const out: Target = { ...t };
  for (const field of TLS_FILE_FIELDS) {
    const v = t[field];
    if (!v || v.includes('-----BEGIN')) continue;
    try {
      out[field] = (await readBoundedFile(v, field)).toString('utf8');
    } catch (e) {
      if (e instanceof FileReadError) throw invalid(e.message);
      throw e;
    }
  }
  return out;
}

/**
 * The TLS options for one connection attempt. `false` = plaintext. libpq semantics:
 * require with a root cert behaves like verify-ca; verify-ca checks the chain only;
 * verify-full checks chain and host name.
 */
export function tlsOptions(t: Target, wantTls: boolean): false | tls.ConnectionOptions {
  if (!wantTls) return false;
  // Contents, not paths: loadTlsFiles has read any file already.
  const ca = t.sslrootcert || undefined;
  const cert = t.sslcert || undefined;
  const key = t.sslkey || undefined;
  if ((cert && !key) || (key && !cert)) throw invalid('sslcert and sslkey must be given together');
  const base: tls.ConnectionOptions = { cert, key };
  let mode = t.sslmode;
  if (mode === 'require' && ca) mode = 'verify-ca';
  switch (mode) {
    case 'verify-full':
      if (!ca) throw invalid('sslmode=verify-full needs sslrootcert');
      return { ...base, ca, rejectUnauthorized: true, servername: /^[\d.:]+$/.test(t.host) ? undefined : t.host };
    case 'verify-ca':
      if (!ca) throw invalid('sslmode=verify-ca needs sslrootcert');
      return { ...base, ca, rejectUnauthorized: true, checkServerIdentity: () => undefined };
    default:
      return { ...base, rejectUnauthorized: false };
  }
}

/** TLS first or plaintext first, per sslmode; the second entry is the fallback, if any. */
export function tlsAttempts(mode: SslMode): boolean[] {
  switch (mode) {
    case 'disable':
      return [false];
    case 'allow':
      return [false, true];
    case 'prefer':
      return [true, false];
    default:
      return [true];
  }
}
