// The PKI's OCSP responder (ocsp/<base64>, POST ocsp), as current Vault's: requests made by
// `openssl ocsp -reqout`, responses judged by `openssl ocsp -respin` (signature, chain, status,
// times), not by our own reader.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { backendMount } from '../support/backend';
import { opensslScratch } from '../support/openssl';
import { parseOcspRequest } from '../../src/secrets/pki/ocsp';
import { octets, oid, seq, tlv } from '../../src/goplugin/der';

const { dir, file } = opensslScratch('vpt-pki-ocsp-');
let n = 0;
const derFile = (b: Buffer) => {
  const f = path.join(dir, `d${n++}.der`);
  fs.writeFileSync(f, b);
  return f;
};
const openssl = (...args: string[]) => {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return r.stdout + r.stderr;
};

/** An OCSP request for these certificates, as openssl writes one (nonce unless noNonce; SHA-1 CertIDs unless hash). */
function request(issuerPem: string, certs: string[], opts: { noNonce?: boolean; hash?: string } = {}): Buffer {
  const out = path.join(dir, `req${n++}.der`);
  const args = ['ocsp', '-issuer', file(issuerPem), ...(opts.hash ? [`-${opts.hash}`] : [])];
  for (const c of certs) args.push('-cert', file(c));
  const r = spawnSync('openssl', [...args, ...(opts.noNonce ? ['-no_nonce'] : []), '-reqout', out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return fs.readFileSync(out);
}

/** openssl's reading of a response: verified against `ca` as trust anchor and issuer, statuses of `certs`. */
function judge(resp: Buffer, issuerPem: string, certs: string[], opts: { ca?: string; req?: Buffer } = {}): string {
  const args = ['ocsp', '-respin', derFile(resp), '-resp_text', '-issuer', file(issuerPem), '-CAfile', file(opts.ca ?? issuerPem)];
  for (const c of certs) args.push('-cert', file(c));
  if (opts.req) args.push('-reqin', derFile(opts.req));
  return openssl(...args);
}

function mount() {
  const { ok } = backendMount('pki');
  return ok;
}
type Call = ReturnType<typeof mount>;
/** GET ocsp/<base64>: the raw answer's status and body. */
const get = async (call: Call, req: Buffer | string) => {
  const d = await call('read', `ocsp/${typeof req === 'string' ? req : req.toString('base64')}`);
  expect(d.http_content_type).toBe('application/ocsp-response');
  return { status: d.http_status_code as number, body: Buffer.from(d.http_raw_body, 'base64') };
};
/** POST ocsp, with the body as current Vault hands a binary path's body to a plugin. */
const post = async (call: Call, req: Buffer) => {
  const d = await call('update', 'ocsp', { http_raw_body: req.toString('base64') });
  return { status: d.http_status_code as number, body: Buffer.from(d.http_raw_body, 'base64') };
};
const MALFORMED = Buffer.from('30030a0101', 'hex');
const UNAUTHORIZED = Buffer.from('30030a0106', 'hex');

/** Seconds between openssl's printed This Update and Next Update of the (first) response. */
function validitySeconds(text: string): number | undefined {
  const t = /This Update: (.+)/.exec(text)?.[1];
  const nx = /Next Update: (.+)/.exec(text)?.[1];
  return t && nx ? (Date.parse(nx) - Date.parse(t)) / 1000 : undefined;
}

describe('PKI OCSP responder', () => {
  let call: Call;
  let ca = '';
  let good = '';
  let revoked = '';
  let revokedSerial = '';
  let revokedAt = 0;
  beforeAll(async () => {
    call = mount();
    ca = (await call('update', 'root/generate/internal', { ttl: '87600h', common_name: 'OCSP Root', key_type: 'ec', issuer_name: 'root' })).certificate;
    await call('update', 'roles/web', { allow_any_name: true, key_type: 'ec', ttl: '24h' });
    good = (await call('update', 'issue/web', { common_name: 'good.example.com' })).certificate;
    const r = await call('update', 'issue/web', { common_name: 'revoked.example.com' });
    revoked = r.certificate;
    revokedSerial = r.serial_number;
    revokedAt = (await call('update', 'revoke', { serial_number: revokedSerial })).revocation_time;
  });

  it('answers "good" for an issued certificate, signed by its issuer, openssl verifying it (GET, nonce in the request)', async () => {
    const req = request(ca, [good]);
    const { status, body } = await get(call, req);
    expect(status).toBe(200);
    const text = judge(body, ca, [good], { req });
    expect(text).toContain('Response verify OK');
    expect(text).toMatch(/: good\n/);
    expect(text).toContain('OCSP Response Status: successful (0x0)');
    expect(text).toContain('Responder Id: CN = OCSP Root');
    // Vault answers no nonce: openssl says so, and still verifies.
    expect(text).toContain('WARNING: no nonce in response');
    expect(text).not.toMatch(/Certificate:\n/); // no certificates in the response, as Vault
    // Default ocsp_expiry: 12h between thisUpdate and nextUpdate.
    expect(validitySeconds(text)).toBe(12 * 3600);
  });

  it('answers "revoked" with the revocation time for a revoked certificate, by POST too', async () => {
    for (const via of [get, post]) {
      const req = request(ca, [revoked], { noNonce: true });
      const { status, body } = await via(call, req);
      expect(status).toBe(200);
      const text = judge(body, ca, [revoked]);
      expect(text).toContain('Response verify OK');
      expect(text).toMatch(/: revoked\n/);
      const at = /Revocation Time: (.+)/.exec(text)?.[1];
      expect(Date.parse(at!) / 1000).toBe(revokedAt);
    }
  });

  it('answers a SHA-256 (and SHA-512) CertID with the same hash', async () => {
    for (const hash of ['sha256', 'sha512']) {
      const req = request(ca, [good], { hash, noNonce: true });
      const { body } = await get(call, req);
      const text = judge(body, ca, [good]);
      expect(text).toContain('Response verify OK');
      expect(text).toContain(`Hash Algorithm: ${hash}`);
      expect(text).toMatch(/: good\n/);
    }
  });

  it('answers only the first CertID of a request, as Vault', async () => {
    const req = request(ca, [revoked, good], { noNonce: true });
    const text = judge((await get(call, req)).body, ca, [revoked, good]);
    expect(text).toMatch(/: revoked\n/);
    expect(text).toContain('No Status found');
    expect(text.match(/Cert Status:/g)).toHaveLength(1);
  });

  it('a certificate of another CA: "unknown", signed by the default issuer', async () => {
    const other = mount();
    const otherCa = (await other('update', 'root/generate/internal', { ttl: '8760h', common_name: 'Other Root', key_type: 'rsa', key_bits: 2048 })).certificate;
    await other('update', 'roles/r', { allow_any_name: true, key_type: 'ec' });
    const stranger = (await other('update', 'issue/r', { common_name: 'x.example.com' })).certificate;
    const { status, body } = await get(call, request(otherCa, [stranger], { noNonce: true }));
    expect(status).toBe(200);
    // Signed by this mount's root, which openssl finds among the trusted certificates.
    const text = openssl('ocsp', '-respin', derFile(body), '-resp_text', '-issuer', file(otherCa), '-VAfile', file(ca), '-cert', file(stranger));
    expect(text).toContain('Response verify OK');
    expect(text).toMatch(/: unknown\n/);
    expect(text).toContain('Responder Id: CN = OCSP Root');
  });

  it('a CertID must carry both the issuer\'s name hash and its key hash: either alone is "unknown"', async () => {
    const other = mount();
    const otherCa = (await other('update', 'root/generate/internal', { ttl: '8760h', common_name: 'Other Root', key_type: 'ec' })).certificate;
    await other('update', 'roles/r', { allow_any_name: true, key_type: 'ec' });
    const stranger = (await other('update', 'issue/r', { common_name: 'x.example.com' })).certificate;
    // openssl hashes the certificate's issuer name and the -issuer certificate's key.
    for (const [issuer, cert] of [
      [otherCa, good], // our root's name, another key
      [ca, stranger], // our root's key, another name
    ]) {
      const text = openssl('ocsp', '-respin', derFile((await get(call, request(issuer, [cert], { noNonce: true }))).body), '-resp_text', '-noverify');
      expect(text).toContain('Cert Status: unknown');
    }
  });

  it('malformed requests get the "malformedRequest" response (400), not an error', async () => {
    const req = request(ca, [good], { noNonce: true });
    const cases: Array<Buffer | string> = [
      'not-base64!',
      'QUJD', // "ABC": not DER
      req.subarray(0, req.length - 1), // truncated
      Buffer.concat([req, Buffer.from([0])]), // trailing data
      Buffer.from('3000', 'hex'), // empty SEQUENCE
      Buffer.from('3004300230' + '00', 'hex'), // an empty request list
      Buffer.from('30053003300100', 'hex'), // a Request that is not a CertID
      Buffer.alloc(1600, 0x30), // too large
    ];
    // A serial INTEGER not minimally encoded (00 01), which Go's DER reader refuses.
    const id = parseOcspRequest(req);
    const sha1 = seq(oid('1.3.14.3.2.26'), tlv(0x05, Buffer.alloc(0)));
    const withSerial = (serial: string) => seq(seq(seq(seq(seq(sha1, octets(id.nameHash), octets(id.keyHash), tlv(0x02, Buffer.from(serial, 'hex')))))));
    expect((await get(call, withSerial('01'))).status).toBe(200);
    cases.push(withSerial('0001'), withSerial(''));
    // Non-minimal length octets (0x81 0x??) in the outer SEQUENCE: Go's DER reader refuses them.
    if (req[1] < 0x80) cases.push(Buffer.concat([Buffer.from([0x30, 0x81, req[1]]), req.subarray(2)]));
    // An unknown hash algorithm in the CertID (SHA-1's OID made 1.3.14.3.2.27).
    cases.push(Buffer.from(req.toString('hex').replace('06052b0e03021a', '06052b0e03021b'), 'hex'));
    for (const c of cases) {
      const { status, body } = await get(call, c);
      expect(status, String(c)).toBe(400);
      expect(body).toEqual(MALFORMED);
    }
    // Base64 as Go decodes it: a space inside (which Node's decoder would skip) is refused.
    const b64 = req.toString('base64');
    expect(await get(call, `${b64.slice(0, 8)} ${b64.slice(8)}`)).toEqual({ status: 400, body: MALFORMED });
    // A well-formed request of 2048 bytes or more is refused as Vault refuses it; one just under is answered.
    const one = parseOcspRequest(req).der; // a CertID; a Request is SEQUENCE { CertID }
    const sized = (count: number) => seq(seq(seq(...Array.from({ length: count }, () => seq(one)))));
    // GET: the base64 text is what is measured; POST: the DER body.
    let count = 1;
    while (sized(count).toString('base64').length < 2048) count++;
    expect((await get(call, sized(count - 1))).status).toBe(200);
    expect(await get(call, sized(count))).toEqual({ status: 400, body: MALFORMED });
    while (sized(count).length < 2048) count++;
    expect((await post(call, sized(count - 1))).status).toBe(200);
    expect(await post(call, sized(count))).toEqual({ status: 400, body: MALFORMED });
    expect(openssl('ocsp', '-respin', derFile(MALFORMED), '-resp_text')).toMatch(/malformedrequest \((0x)?1\)/);
    expect(await get(call, '')).toMatchObject({ status: 400 });
    expect(await call('update', 'ocsp', {})).toMatchObject({ http_status_code: 400 });
  });

  it('reads the request as openssl writes it and as Go reads it: first CertID, its hash, serial', () => {
    const id = parseOcspRequest(request(ca, [revoked, good], { hash: 'sha256' }));
    expect(id.hash).toBe('sha256');
    expect(id.serial.toString('hex')).toBe(new X509Certificate(revoked).serialNumber.toLowerCase());
    expect(id.nameHash).toHaveLength(32);
  });

  it('an issuer without the ocsp-signing usage cannot sign: "unauthorized" (401); ocsp_disable likewise', async () => {
    const req = request(ca, [good], { noNonce: true });
    await call('update', 'issuer/root', { usage: 'read-only,issuing-certificates,crl-signing' });
    try {
      expect(await get(call, req)).toEqual({ status: 401, body: UNAUTHORIZED });
      expect(openssl('ocsp', '-respin', derFile(UNAUTHORIZED), '-resp_text')).toMatch(/unauthorized \((0x)?6\)/);
    } finally {
      await call('update', 'issuer/root', { usage: 'read-only,issuing-certificates,crl-signing,ocsp-signing' });
    }
    expect((await get(call, req)).status).toBe(200);
    // The default issuer may not sign "unknown" either: a certificate of another CA is then "unauthorized".
    const other = mount();
    const otherCa = (await other('update', 'root/generate/internal', { ttl: '8760h', common_name: 'Other Root', key_type: 'ec' })).certificate;
    await other('update', 'roles/r', { allow_any_name: true, key_type: 'ec' });
    const stranger = (await other('update', 'issue/r', { common_name: 'x.example.com' })).certificate;
    const strangerReq = request(otherCa, [stranger], { noNonce: true });
    expect((await get(call, strangerReq)).status).toBe(200);
    await call('update', 'issuer/root', { usage: 'read-only,issuing-certificates,crl-signing' });
    try {
      expect(await get(call, strangerReq)).toEqual({ status: 401, body: UNAUTHORIZED });
    } finally {
      await call('update', 'issuer/root', { usage: 'read-only,issuing-certificates,crl-signing,ocsp-signing' });
    }

    await call('update', 'config/crl', { ocsp_disable: true });
    expect(await call('read', 'config/crl')).toMatchObject({ ocsp_disable: true, ocsp_expiry: '12h' });
    expect(await get(call, req)).toEqual({ status: 401, body: UNAUTHORIZED });
    expect(await post(call, req)).toEqual({ status: 401, body: UNAUTHORIZED });
    await call('update', 'config/crl', { ocsp_disable: false });
    expect((await get(call, req)).status).toBe(200);
  });

  it('a revoked certificate is answered only for the issuer recorded at revocation: another issuer of the mount answers "unknown"', async () => {
    const second = (await call('update', 'root/generate/internal', { ttl: '8760h', common_name: 'Second Root', key_type: 'ec', issuer_name: 'second' }))
      .certificate;
    // CertIDs naming the second root (its name and key) with our certificates' serials: openssl's -serial.
    const bySerial = (pem: string) => `0x${new X509Certificate(pem).serialNumber}`;
    const ask = (pem: string) => {
      openssl('ocsp', '-issuer', file(second), '-serial', bySerial(pem), '-no_nonce', '-reqout', path.join(dir, 'serial.der'));
      return fs.readFileSync(path.join(dir, 'serial.der'));
    };
    const read = (resp: Buffer, pem: string) =>
      openssl('ocsp', '-respin', derFile(resp), '-resp_text', '-issuer', file(second), '-CAfile', file(second), '-VAfile', file(ca), '-serial', bySerial(pem));
    const r = await get(call, ask(revoked));
    expect(r.status).toBe(200);
    const text = read(r.body, revoked);
    expect(text).toContain('Response verify OK');
    expect(text).toMatch(/: unknown\n/);
    expect(text).toContain('Responder Id: CN = OCSP Root');
    // A serial the mount did not revoke, under the second root: "good", signed by it (Vault keeps no list of what each issuer issued).
    const unrevoked = read((await get(call, ask(good))).body, good);
    expect(unrevoked).toContain('Response verify OK');
    expect(unrevoked).toMatch(/: good\n/);
    expect(unrevoked).toContain('Responder Id: CN = Second Root');
    // The issuer named lacks ocsp-signing: "unauthorized", even though the default issuer could sign "unknown".
    await call('update', 'issuer/second', { usage: 'read-only,issuing-certificates,crl-signing' });
    expect(await get(call, ask(good))).toEqual({ status: 401, body: UNAUTHORIZED });
    await call('update', 'issuer/second', { usage: 'read-only,issuing-certificates,crl-signing,ocsp-signing' });
  });

  it('no issuer can sign "unknown" (a mount without a CA): "unauthorized"', async () => {
    const empty = mount();
    expect(await get(empty, request(ca, [good], { noNonce: true }))).toEqual({ status: 401, body: UNAUTHORIZED });
  });

  it('ocsp_expiry in config/crl sets nextUpdate; "0" leaves it out', async () => {
    const req = request(ca, [good], { noNonce: true });
    try {
      await call('update', 'config/crl', { ocsp_expiry: '1h' });
      expect(validitySeconds(judge((await get(call, req)).body, ca, [good]))).toBe(3600);
      await call('update', 'config/crl', { ocsp_expiry: '0' });
      expect((await call('read', 'config/crl')).ocsp_expiry).toBe('0');
      const text = judge((await get(call, req)).body, ca, [good]);
      expect(text).toContain('Response verify OK');
      expect(text).not.toContain('Next Update');
      await expect(call('update', 'config/crl', { ocsp_expiry: 'soon' })).rejects.toThrow(/ocsp_expiry/);
    } finally {
      await call('update', 'config/crl', { ocsp_expiry: '12h' });
    }
  });

  it('an issuer whose revocations are signed with RSA-PSS signs OCSP with PKCS#1 v1.5, as Vault', async () => {
    const pss = mount();
    const root = (await pss('update', 'root/generate/internal', { ttl: '8760h', common_name: 'PSS Root', key_type: 'rsa', key_bits: 2048, use_pss: true }))
      .certificate;
    await pss('update', 'roles/r', { allow_any_name: true, key_type: 'ec' });
    const leaf = (await pss('update', 'issue/r', { common_name: 'x.example.com' })).certificate;
    const { body } = await get(pss, request(root, [leaf], { noNonce: true }));
    const text = judge(body, root, [leaf]);
    expect(text).toContain('Response verify OK');
    expect(text).toMatch(/Signature Algorithm: sha256WithRSAEncryption/);
  });
});
