import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { readBoundedFile, operatorAllows, FileReadError } from '../../src/util/files';
import { operatorSetting } from '../../src/goplugin/env';

describe('readBoundedFile', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-files-'));
  const ok = path.join(dir, 'ok.pem');
  fs.writeFileSync(ok, 'hello');

  it('reads a small regular file', async () => {
    expect((await readBoundedFile(ok, 'sslrootcert')).toString()).toBe('hello');
  });

  it('reads a file of exactly the limit whole, and refuses one byte more', async () => {
    const at = path.join(dir, 'at-limit');
    const over = path.join(dir, 'over-limit');
    const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 251));
    fs.writeFileSync(at, bytes);
    fs.writeFileSync(over, Buffer.concat([bytes, Buffer.from([7])]));
    expect((await readBoundedFile(at, 'f', 4096)).equals(bytes)).toBe(true);
    await expect(readBoundedFile(over, 'f', 4096)).rejects.toThrow('f is not a readable file (a regular file of at most 4096 bytes)');
    // An empty file is a file: read as nothing.
    const empty = path.join(dir, 'empty');
    fs.writeFileSync(empty, '');
    expect((await readBoundedFile(empty, 'f', 4096)).length).toBe(0);
  });

  it('refuses devices, FIFOs, pipes, directories, missing and oversized files with one message', async () => {
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const big = path.join(dir, 'big');
    fs.writeFileSync(big, Buffer.alloc(2048));
    const msgs = new Set<string>();
    for (const p of ['/dev/zero', fifo, '/proc/self/fd/1', dir, path.join(dir, 'missing'), big, '', 'a\0b']) {
      const err = await readBoundedFile(p, 'sslrootcert', 1024).then(
        () => undefined,
        (e) => e,
      );
      expect(err, p).toBeInstanceOf(FileReadError);
      msgs.add(err.message);
    }
    expect([...msgs]).toEqual(['sslrootcert is not a readable file (a regular file of at most 1024 bytes)']);
  });
});

describe('operatorAllows', () => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-allow-')));
  const inside = path.join(dir, 'a.so');
  fs.writeFileSync(inside, '');
  const link = path.join(dir, 'link');
  fs.symlinkSync('/etc/passwd', link);

  it('allows exact files and directory entries, after resolving links', () => {
    expect(operatorAllows(inside, `${dir}/`)).toBe(true);
    expect(operatorAllows(inside, `/nope:${inside}`)).toBe(true);
    expect(operatorAllows(link, `${dir}/`)).toBe(false);
    expect(operatorAllows(`${dir}/../${path.basename(dir)}/a.so`, `${dir}/`)).toBe(true);
    expect(operatorAllows('/etc/passwd', `${dir}/`)).toBe(false);
    expect(operatorAllows(inside, undefined)).toBe(false);
    expect(operatorAllows(inside, 'relative/')).toBe(false);
  });
});

describe('operatorSetting', () => {
  it('reads VAULT_ first, then BAO_', () => {
    expect(operatorSetting('X', { VAULT_X: 'v', BAO_X: 'b' })).toBe('v');
    expect(operatorSetting('X', { BAO_X: 'b' })).toBe('b');
    expect(operatorSetting('X', { VAULT_X: '' })).toBeUndefined();
  });
});
