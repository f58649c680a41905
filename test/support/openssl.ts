// The openssl CLI over scratch files: PEMs written to a temporary folder (removed after the
// file's tests) and read back by openssl, the independent judge of what the PKI issues.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll } from 'vitest';

/** A scratch folder for this test file (`dir`): `file` writes a body and returns its path; `openssl` runs the CLI and returns stdout + stderr. */
export function opensslScratch(prefix: string) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  let n = 0;
  const file = (body: string) => {
    const f = path.join(tmp, `f${n++}.pem`);
    fs.writeFileSync(f, body);
    return f;
  };
  const openssl = (...args: string[]) => {
    const r = spawnSync('openssl', args, { encoding: 'utf8' });
    return r.stdout + r.stderr;
  };
  /** openssl's text form of a certificate. */
  const text = (pem: string) => openssl('x509', '-in', file(pem), '-noout', '-text');
  /** The line after an extension's title in openssl's text ("(absent)" without it), "critical " first when it is. */
  const ext = (pem: string, title: string): string => {
    const lines = text(pem)
      .split('\n')
      .map((l) => l.trim());
    const i = lines.findIndex((l) => l.startsWith(title));
    return i < 0 ? '(absent)' : `${lines[i].includes('critical') ? 'critical ' : ''}${lines[i + 1]}`;
  };
  return { dir: tmp, file, openssl, text, ext };
}
