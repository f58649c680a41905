// The PKI's OCSP responder through the real Vault: certificates issued and revoked with the
// vault CLI, requests written by `openssl ocsp -reqout`, sent with curl and no token, and the
// responses judged by `openssl ocsp -respin`. Vault 1.8 (the binary here) parses every POST
// body as JSON or a form, so a DER POST (application/ocsp-request) never reaches a plugin there:
// the GET form is what OCSP clients can use through it; the POST handler is reached with the
// body in the request data (http_raw_body), the shape current Vault gives a binary path's body.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevVault, vaultBin, type VaultNode } from '../support/vault';
import { enablePki, file, openssl, write } from './steps';

/** curl as an OCSP client uses it: no Vault token; the status, content type and body. */
function curl(url: string, extra: string[] = []): { status: number; type: string; body: Buffer } {
  const out = file('');
  const r = spawnSync('curl', ['-sS', '-o', out, '-w', '%{http_code} %{content_type}', ...extra, url], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`curl: ${r.stderr}`);
  const [status, type = ''] = r.stdout.split(' ');
  return { status: Number(status), type, body: fs.readFileSync(out) };
}

describe.skipIf(!vaultBin())('PKI OCSP responder through the real Vault (curl, no token; openssl judges)', { timeout: 120_000 }, () => {
  let v: VaultNode;
  let ca = '';
  beforeAll(async () => {
    v = await startDevVault();
    await v.registerPlugin();
    await enablePki(v);
    await v.vault(['secrets', 'tune', '-max-lease-ttl=87600h', 'pki']);
    ca = (await write(v, 'pki/root/generate/internal', 'common_name=OCSP Root', 'key_type=ec', 'ttl=87600h')).certificate;
    await write(v, 'pki/roles/web', 'allowed_domains=example.com', 'allow_subdomains=true', 'key_type=ec');
  });
  afterAll(async () => {
    await v?.destroy();
  });

  /** An openssl request (with a nonce) for the certificate; base64 with no "//", which Go's HTTP server would clean out of a path. */
  function request(cert: string): { der: Buffer; path: string } {
    for (;;) {
      const out = file('');
      const r = openssl('ocsp', '-issuer', file(ca), '-cert', file(cert), '-reqout', out);
      expect(r.status, r.out).toBe(0);
      const der = fs.readFileSync(out);
      if (!der.toString('base64').includes('//')) return { der, path: encodeURIComponent(der.toString('base64')) };
    }
  }
  const judge = (resp: Buffer, cert: string, req: Buffer) =>
    openssl('ocsp', '-respin', file(resp), '-resp_text', '-issuer', file(ca), '-CAfile', file(ca), '-cert', file(cert), '-reqin', file(req)).out;

  it('GET ocsp/<url-encoded base64> without a token: "good", then "revoked" after vault write pki/revoke', async () => {
    const leaf = await write(v, 'pki/issue/web', 'common_name=app.example.com', 'ttl=1h');
    const req = request(leaf.certificate);
    const before = curl(`${v.addr}/v1/pki/ocsp/${req.path}`);
    expect(before.status).toBe(200);
    expect(before.type).toBe('application/ocsp-response');
    let text = judge(before.body, leaf.certificate, req.der);
    expect(text).toContain('Response verify OK');
    expect(text).toMatch(/: good\n/);
    expect(text).toContain('Next Update');

    const { revocation_time } = await write(v, 'pki/revoke', `serial_number=${leaf.serial_number}`);
    const after = curl(`${v.addr}/v1/pki/ocsp/${req.path}`);
    expect(after.status).toBe(200);
    text = judge(after.body, leaf.certificate, req.der);
    expect(text).toContain('Response verify OK');
    expect(text).toMatch(/: revoked\n/);
    expect(Date.parse(/Revocation Time: (.+)/.exec(text)![1]) / 1000).toBe(revocation_time);
  });

  it('POST ocsp: the body as request data (http_raw_body) is answered; a DER body is refused by Vault 1.8 itself', async () => {
    const leaf = await write(v, 'pki/issue/web', 'common_name=post.example.com', 'ttl=1h');
    const req = request(leaf.certificate);
    const viaData = curl(`${v.addr}/v1/pki/ocsp`, ['-X', 'POST', '--data-binary', JSON.stringify({ http_raw_body: req.der.toString('base64') })]);
    expect(viaData.status).toBe(200);
    const text = judge(viaData.body, leaf.certificate, req.der);
    expect(text).toContain('Response verify OK');
    expect(text).toMatch(/: good\n/);
    const der = curl(`${v.addr}/v1/pki/ocsp`, ['-X', 'POST', '-H', 'Content-Type: application/ocsp-request', '--data-binary', `@${file(req.der)}`]);
    expect(der.status).toBe(400);
    expect(der.type).toBe('application/json');
  });

  it('a malformed request: "malformedRequest" (400); ocsp_disable in config/crl: "unauthorized" (401)', async () => {
    const bad = curl(`${v.addr}/v1/pki/ocsp/${encodeURIComponent(Buffer.from('not an OCSP request').toString('base64'))}`);
    expect(bad.status).toBe(400);
    expect(bad.type).toBe('application/ocsp-response');
    expect(openssl('ocsp', '-respin', file(bad.body), '-resp_text').out).toMatch(/malformedrequest \((0x)?1\)/);

    const leaf = await write(v, 'pki/issue/web', 'common_name=off.example.com', 'ttl=1h');
    const req = request(leaf.certificate);
    await write(v, 'pki/config/crl', 'ocsp_disable=true');
    const off = curl(`${v.addr}/v1/pki/ocsp/${req.path}`);
    expect(off.status).toBe(401);
    expect(openssl('ocsp', '-respin', file(off.body), '-resp_text').out).toMatch(/unauthorized \((0x)?6\)/);
    await write(v, 'pki/config/crl', 'ocsp_disable=false', 'ocsp_expiry=0');
    const on = curl(`${v.addr}/v1/pki/ocsp/${req.path}`);
    const text = judge(on.body, leaf.certificate, req.der);
    expect(text).toMatch(/: good\n/);
    expect(text).not.toContain('Next Update');
  });
});
