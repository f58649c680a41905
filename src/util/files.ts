// Reading files whose paths come from API input (certificate paths, credential files).
// Such a path may name anything: /dev/zero (endless), a FIFO or /proc/self/fd/1 (blocks
// forever), a huge file, or a secret the caller should not learn exists. So: open without
// blocking, accept only a regular file, cap its size, read off the event loop, and say
// the same thing for every refusal.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Default cap for certificate, key and credential files. */
export const MAX_OPERATOR_FILE_BYTES = 1024 * 1024;

/** A file the plugin may not, or cannot, read. */
export class FileReadError extends Error {}

/**
 * Read a regular file of at most `maxBytes`. Every failure (missing, not a regular file,
 * too large, unreadable) is the same FileReadError naming only `what`, so the error does
 * not reveal whether or what the path is.
 */
export async function readBoundedFile(p: string, what: string, maxBytes: number = MAX_OPERATOR_FILE_BYTES): Promise<Buffer> {
  const refuse = (): never => {
    throw new FileReadError(`${what} is not a readable file (a regular file of at most ${maxBytes} bytes)`);
  };
  if (typeof p !== 'string' || p === '' || p.includes('\0')) refuse();
  let fh: fs.promises.FileHandle | undefined;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer.
    fh = await fs.promises.open(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
    const st = await fh.stat();
    if (!st.isFile() || st.size > maxBytes) refuse();
    const buf = Buffer.alloc(Math.min(st.size, maxBytes) + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > maxBytes) refuse(); // grew while we read
      if (n === buf.length) break;
    }
    return buf.subarray(0, n);
  } catch (e) {
    if (e instanceof FileReadError) throw e;
    return refuse();
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/**
 * Is `p` allowed by an operator's list (entries separated by ':' or ','; an entry ending
 * in '/' allows everything below that directory)? Both sides are resolved through
 * symlinks first, so a link inside an allowed directory cannot point outside it.
 */
export function operatorAllows(p: string, list: string | undefined): boolean {
  if (!list || typeof p !== 'string' || p === '' || p.includes('\0')) return false;
  let real: string;
  try {
    real = fs.realpathSync(p);
  } catch {
    return false;
  }
  for (const raw of list.split(/[:,]/)) {
    const entry = raw.trim();
    if (!entry || !path.isAbsolute(entry)) continue;
    let resolved: string;
    try {
      resolved = fs.realpathSync(entry);
    } catch {
      continue;
    }
    if (entry.endsWith('/')) {
      if (real.startsWith(resolved.endsWith('/') ? resolved : resolved + '/')) return true;
    } else if (real === resolved) {
      return true;
    }
  }
  return false;
}
