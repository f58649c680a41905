// An issuer's Name Constraints (RFC 5280 4.2.1.10) bind what this PKI signs under it, as in
// current Vault (which verifies each certificate against its chain): a CA made by openssl
// with permitted and excluded subtrees of every kind is imported, and names inside and
// outside them are issued; every certificate issued is verified by openssl against the CA.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dataOrError } from '../support/backend';
import { opensslScratch } from '../support/openssl';
import { checkNameConstraints, nameConstraintsOf } from '../../src/secrets/pki/name-constraints';

const { dir, file, openssl } = opensslScratch('vpt-pki-nc-');

function constrainedCa(
  nameConstraints = 'critical,permitted;DNS:example.com,excluded;DNS:bad.example.com,permitted;IP:10.0.0.0/255.0.0.0,permitted;email:.example.com,permitted;URI:.example.com',
): { cert: string; key: string } {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      path.join(dir, 'ca.key'),
      '-out',
      path.join(dir, 'ca.pem'),
      '-subj',
      '/CN=Constrained CA',
      '-days',
      '3650',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-addext',
      `nameConstraints=${nameConstraints}`,
    ],
    { stdio: 'pipe' },
  );
  return { cert: fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8'), key: fs.readFileSync(path.join(dir, 'ca.key'), 'utf8') };
}

describe('Name Constraints of the issuing CA', () => {
  const ca = constrainedCa();

  it("are not read from a value whose DER has a non-minimal length (Go's x509 refuses such a certificate; OpenSSL reads it)", () => {
    // permitted [0] { GeneralSubtree { dNSName "example.com" } }, the outer length in the long form (30 81 11).
    const value = '308111a00f300d820b6578616d706c652e636f6d';
    expect(nameConstraintsOf(constrainedCa(`critical,DER:${value.replace('308111', '3011')}`).cert)?.permitted.dns).toEqual(['example.com']);
    expect(() => nameConstraintsOf(constrainedCa(`critical,DER:${value}`).cert)).toThrow(/^DER: malformed or truncated element$/);
  });

  it('are read from the certificate: permitted and excluded DNS, IP, email and URI subtrees', () => {
    const nc = nameConstraintsOf(ca.cert)!;
    expect(nc.permitted.dns).toEqual(['example.com']);
    expect(nc.excluded.dns).toEqual(['bad.example.com']);
    expect(nc.permitted.emails).toEqual(['.example.com']);
    expect(nc.permitted.uris).toEqual(['.example.com']);
    expect(nc.permitted.ips.map((i) => [...i.addr, ...i.mask])).toEqual([[10, 0, 0, 0, 255, 0, 0, 0]]);
    const ok = (n: Partial<Parameters<typeof checkNameConstraints>[1]>) => () => checkNameConstraints([nc], { dns: [], emails: [], uris: [], ips: [], ...n });
    expect(ok({ dns: ['example.com', 'a.example.com', '*.example.com', 'A.Example.COM.'] })).not.toThrow();
    expect(ok({ dns: ['evil.other.com'] })).toThrow(/DNS name "evil.other.com" is outside the names its issuing CA \(CN=Constrained CA\) may certify/);
    expect(ok({ dns: ['notexample.com'] })).toThrow(/outside/);
    expect(ok({ dns: ['x.bad.example.com'] })).toThrow(/excluded/);
    expect(ok({ ips: ['10.1.2.3'] })).not.toThrow();
    expect(ok({ ips: ['11.1.2.3'] })).toThrow(/IP address "11.1.2.3" is outside/);
    expect(ok({ ips: ['::1'] })).toThrow(/outside/); // an IPv6 address is in no IPv4 subtree
    expect(ok({ emails: ['a@mail.example.com'] })).not.toThrow();
    expect(ok({ emails: ['a@example.org'] })).toThrow(/email address/);
    expect(ok({ uris: ['spiffe://svc.example.com/x'] })).not.toThrow();
    expect(ok({ uris: ['spiffe://svc.example.org/x'] })).toThrow(/URI host/);
  });

  it('refuse to issue a leaf outside them (CN included) and issue one inside them that openssl verifies', async () => {
    const pki = dataOrError('pki');
    const imported = await pki('update', 'config/ca', { pem_bundle: `${ca.key}\n${ca.cert}` });
    expect(imported.error).toBeUndefined();
    expect(
      (
        await pki('update', 'roles/any', {
          allow_any_name: true,
          enforce_hostnames: false,
          allow_ip_sans: true,
          allowed_uri_sans: 'spiffe://*',
          key_type: 'ec',
        })
      ).error,
    ).toBeUndefined();
    const issue = (d: Record<string, unknown>) => pki('update', 'issue/any', d);
    for (const d of [
      { common_name: 'evil.other.com' },
      { common_name: 'evil.other.com', exclude_cn_from_sans: true },
      { common_name: 'a.example.com', alt_names: 'x.bad.example.com' },
      { common_name: 'a.example.com', ip_sans: '192.168.1.1' },
      { common_name: 'a.example.com', uri_sans: 'spiffe://svc.example.org/x' },
    ])
      expect((await issue(d)).error, JSON.stringify(d)).toMatch(/Name Constraints/);
    const good = await issue({
      common_name: 'a.example.com',
      alt_names: 'b.example.com,ops@mail.example.com',
      ip_sans: '10.9.8.7',
      uri_sans: 'spiffe://svc.example.com/x',
    });
    expect(good.error, good.error).toBeUndefined();
    expect(openssl('verify', '-CAfile', file(ca.cert), file(good.data.certificate))).toMatch(/: OK/);
    // A CN that is not a DNS name is not a DNS name to constrain (a person's name on a client certificate).
    const person = await issue({ common_name: 'Jane Doe', alt_names: 'jane@mail.example.com' });
    expect(person.error).toBeUndefined();
  });
});
