// The warnings current Vault's PKI puts into its answers (the response's `warnings`), each
// checked where its condition holds and where it does not: sign/ and sign-verbatim with
// request fields a use_csr_* role does not use.
import { beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { backendMount } from '../support/backend';
import { opensslScratch } from '../support/openssl';

const { file, openssl } = opensslScratch('vpt-pki-warn-');

function csrWith(subj: string, san?: string): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key = file(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  return openssl('req', '-new', '-key', key, '-subj', subj, ...(san ? ['-addext', `subjectAltName=${san}`] : []));
}

const CN_WARNING = 'the common_name field was provided but the role is set with "use_csr_common_name" set to true';
const SANS_WARNING = 'the alt_names field was provided but the role is set with "use_csr_sans" set to true';

describe('PKI warnings: request fields a use_csr_* role does not use', () => {
  const { call, ok } = backendMount('pki');
  const csr = csrWith('/CN=csr.example.com', 'DNS:csr.example.com');
  const warningsOf = async (path: string, d: Record<string, unknown>) => {
    const r = await call('update', path, { csr, ...d });
    expect(r.error).toBeUndefined();
    return r.warnings ?? [];
  };
  beforeAll(async () => {
    await ok('update', 'root/generate/internal', { common_name: 'Warn Root', key_type: 'ec', ttl: '87600h' });
    const role = { allow_any_name: true, key_type: 'any', ttl: '1h' };
    await ok('update', 'roles/csr', { ...role, use_csr_common_name: true, use_csr_sans: true });
    await ok('update', 'roles/fields', { ...role, use_csr_common_name: false, use_csr_sans: false });
  });

  it('sign/: common_name with use_csr_common_name, alt_names with use_csr_sans, each its own warning', async () => {
    expect(await warningsOf('sign/csr', {})).toEqual([]);
    expect(await warningsOf('sign/csr', { common_name: 'x.example.com' })).toEqual([CN_WARNING]);
    expect(await warningsOf('sign/csr', { alt_names: 'y.example.com' })).toEqual([SANS_WARNING]);
    expect(await warningsOf('sign/csr', { common_name: 'x.example.com', alt_names: 'y.example.com' })).toEqual([CN_WARNING, SANS_WARNING]);
    expect(await warningsOf('issuer/default/sign/csr', { common_name: 'x.example.com' })).toEqual([CN_WARNING]);
    // An empty alt_names is no alt_names, as in Vault.
    expect(await warningsOf('sign/csr', { alt_names: '' })).toEqual([]);
  });

  it('sign/: no warning when the role takes the names from the request, nor on issue/', async () => {
    expect(await warningsOf('sign/fields', { common_name: 'x.example.com', alt_names: 'y.example.com' })).toEqual([]);
    await ok('update', 'roles/issue', { allow_any_name: true, key_type: 'ec', ttl: '1h', use_csr_common_name: true, use_csr_sans: true });
    const issued = await call('update', 'issue/issue', { common_name: 'x.example.com', alt_names: 'y.example.com' });
    expect(issued.error).toBeUndefined();
    expect(issued.warnings ?? []).toEqual([]);
  });

  it('sign-verbatim: its role takes both from the CSR, so both fields are warned about', async () => {
    expect(await warningsOf('sign-verbatim', { ttl: '1h' })).toEqual([]);
    expect(await warningsOf('sign-verbatim', { ttl: '1h', common_name: 'x.example.com', alt_names: 'y.example.com' })).toEqual([CN_WARNING, SANS_WARNING]);
  });
});

// Current Vault's words (builtin/logical/pki/issuing/sign_cert.go); Vault 1.8 said nothing.
const BC_IGNORED = 'specified CSR contained a Basic Constraints extension that was ignored during issuance';

describe('PKI warnings: a CSR that asks for Basic Constraints', () => {
  const { call, ok } = backendMount('pki');
  const csrBc = (bc: string, subj = '/CN=bc.example.com') => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const key = file(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    return openssl('req', '-new', '-key', key, '-subj', subj, '-addext', `basicConstraints=${bc}`, '-addext', 'subjectAltName=DNS:bc.example.com');
  };
  const basicConstraints = (pem: string) => openssl('x509', '-in', file(pem), '-noout', '-ext', 'basicConstraints').trim();
  beforeAll(async () => {
    await ok('update', 'root/generate/internal', { common_name: 'BC Root', key_type: 'ec', ttl: '87600h', max_path_length: 3 });
    await ok('update', 'roles/leaf', { allow_any_name: true, key_type: 'any', ttl: '1h', max_ttl: '2h' });
    await ok('update', 'roles/bcleaf', { allow_any_name: true, key_type: 'any', ttl: '1h', basic_constraints_valid_for_non_ca: true });
  });

  it('sign/ and sign-verbatim: never copied into the leaf, and the answer says so (after the TTL warning)', async () => {
    for (const bc of ['critical,CA:TRUE,pathlen:0', 'CA:FALSE', 'DER:0c0161' /* not even a BasicConstraints: Vault never decodes it */]) {
      for (const path of ['sign/leaf', 'sign-verbatim', 'issuer/default/sign/leaf']) {
        const r = await call('update', path, { csr: csrBc(bc) });
        expect(r.error, `${path} ${bc}`).toBeUndefined();
        expect(r.err).toBeUndefined();
        expect(r.warnings).toEqual([BC_IGNORED]);
        expect(basicConstraints(r.data.certificate)).toBe('No extensions in certificate');
      }
    }
    // The role's own CA:FALSE (basic_constraints_valid_for_non_ca) is the role's, not the CSR's.
    const own = await call('update', 'sign/bcleaf', { csr: csrBc('critical,CA:TRUE') });
    expect(own.warnings).toEqual([BC_IGNORED]);
    expect(basicConstraints(own.data.certificate)).toMatch(/Basic Constraints: critical\n\s*CA:FALSE$/);
    // A CSR read by the general parser (a "," in its CN) too: no 500 on a malformed value.
    const odd = await call('update', 'sign-verbatim', { csr: csrBc('DER:0c0161', '/CN=x\\,y') });
    expect(odd.err).toBeUndefined();
    expect(odd.warnings).toEqual([BC_IGNORED]);
    // After the signing's own warnings (the TTL cut), as in Vault's signCert.
    const capped = await call('update', 'sign/leaf', { csr: csrBc('CA:TRUE'), ttl: '3h' });
    const TTL_CUT = 'TTL "3h0m0s" is longer than permitted maxTTL "2h0m0s", so maxTTL is being used';
    expect(capped.warnings).toEqual([TTL_CUT, BC_IGNORED]);
    // The signing's warnings come before those about unused request fields, as current Vault
    // lists them first (it lists them once more after those: listed once here).
    const withField = await call('update', 'sign/leaf', { csr: csrBc('CA:TRUE'), ttl: '3h', common_name: 'x.example.com' });
    expect(withField.warnings).toEqual([TTL_CUT, BC_IGNORED, CN_WARNING]);
  });

  it('no such warning without the extension, nor on sign-intermediate, whose certificate has its own Basic Constraints', async () => {
    const plain = await call('update', 'sign/leaf', { csr: csrWith('/CN=plain.example.com') });
    expect(plain.warnings ?? []).toEqual([]);
    for (const d of [{}, { use_csr_values: true }]) {
      const r = await call('update', 'root/sign-intermediate', { csr: csrBc('critical,CA:FALSE'), ttl: '1h', ...d });
      expect(r.error).toBeUndefined();
      expect(r.warnings ?? []).not.toContain(BC_IGNORED);
      // CA:TRUE with the issuer's pathlen less one: the CSR's CA:FALSE is not taken.
      expect(basicConstraints(r.data.certificate)).toMatch(/Basic Constraints: critical\n\s*CA:TRUE, pathlen:2$/);
    }
  });
});

const NO_AIA =
  "This mount hasn't configured any authority information access (AIA) fields; this may make it harder for systems to find missing certificates in the chain or to validate revocation status of certificates. Consider updating /config/urls or the newly generated issuer with this information.";
const NO_AIA_INTERMEDIATE = `${NO_AIA} Since this certificate is an intermediate, it might be useful to regenerate this certificate after fixing this problem for the root mount.`;

describe('PKI warnings: a CA made or imported while config/urls is empty', () => {
  /** A root mount and an intermediate mount; `urls`: config/urls is set on both first (one field is enough). */
  async function chain(urls: boolean) {
    const fresh = async (field: string) => {
      const m = backendMount('pki');
      if (urls) await m.ok('update', 'config/urls', { [field]: 'http://pki.example/x' });
      return m;
    };
    const root = await fresh('ocsp_servers');
    const int = await fresh('crl_distribution_points');
    const generated = await root.call('update', 'root/generate/internal', { common_name: 'AIA Root', key_type: 'ec', ttl: '87600h' });
    const csr = await int.call('update', 'intermediate/generate/internal', { common_name: 'AIA Int', key_type: 'ec' });
    const signed = await root.call('update', 'root/sign-intermediate', { csr: csr.data.csr, ttl: '8760h' });
    const setSigned = await int.call('update', 'intermediate/set-signed', { certificate: signed.data.certificate });
    const again = await int.call('update', 'intermediate/set-signed', { certificate: signed.data.certificate });
    const imported = await (await fresh('issuing_certificates')).call('update', 'issuers/import/cert', { pem_bundle: generated.data.certificate });
    const configCa = await (await fresh('issuing_certificates')).call('update', 'config/ca', { pem_bundle: signed.data.certificate });
    return { generated, csr, signed, setSigned, again, imported, configCa };
  }

  it('root/generate, sign-intermediate, set-signed and the imports warn; intermediate/generate says more', async () => {
    const c = await chain(false);
    for (const r of [c.generated, c.signed, c.setSigned, c.again, c.imported, c.configCa]) {
      expect(r.error).toBeUndefined();
      expect(r.warnings).toEqual([NO_AIA]);
    }
    expect(c.csr.warnings).toEqual([NO_AIA_INTERMEDIATE]);
  });

  it('no such warning once config/urls has a URL', async () => {
    const c = await chain(true);
    for (const r of Object.values(c)) {
      expect(r.error).toBeUndefined();
      expect(r.warnings ?? []).toEqual([]);
    }
  });
});

const NO_SUBJECT =
  'This issuer certificate was generated without a Subject; this makes it likely that issuing leaf certs with this certificate will cause TLS validation libraries to reject this certificate.';

describe('PKI warnings: a CA certificate with an empty subject', () => {
  const subjectOf = (pem: string) => new X509Certificate(pem).subject;

  it('root/generate takes no common_name (as current Vault); an empty subject is warned about, a subject without CN is not', async () => {
    const { call } = backendMount('pki');
    const bare = await call('update', 'root/generate/internal', { key_type: 'ec', ttl: '87600h', issuer_name: 'bare' });
    expect(bare.error).toBeUndefined();
    expect(subjectOf(bare.data.certificate)).toBe('');
    expect(bare.warnings?.[0]).toBe(NO_SUBJECT);
    const org = await call('update', 'root/generate/internal', { key_type: 'ec', ttl: '87600h', organization: 'Org Only', issuer_name: 'org' });
    expect(subjectOf(org.data.certificate)).toBe('O=Org Only');
    expect(org.warnings).not.toContain(NO_SUBJECT);
    const named = await call('update', 'root/rotate/internal', { key_type: 'ec', ttl: '87600h', common_name: 'Named Root' });
    expect(named.warnings).not.toContain(NO_SUBJECT);
    // intermediate/generate takes no common_name either; Vault does not warn there.
    const csr = await call('update', 'intermediate/generate/internal', { key_type: 'ec' });
    expect(csr.error).toBeUndefined();
    expect(csr.warnings).not.toContain(NO_SUBJECT);
  });

  it("sign-intermediate: without common_name the CN is the CSR's, else none (no made-up CN); an empty subject is warned about", async () => {
    const { call, ok } = backendMount('pki');
    await ok('update', 'root/generate/internal', { common_name: 'Subject Root', key_type: 'ec', ttl: '87600h' });
    const sign = (csr: string, d: Record<string, unknown> = {}) => call('update', 'root/sign-intermediate', { csr, ttl: '1h', ...d });
    const empty = await sign(csrWith('/'));
    expect(subjectOf(empty.data.certificate)).toBe('');
    expect(empty.warnings).toContain(NO_SUBJECT);
    // The CSR's other attributes are not taken without use_csr_values (as in Vault): still empty.
    const orgOnly = await sign(csrWith('/O=CSR Org'));
    expect(subjectOf(orgOnly.data.certificate)).toBe('');
    expect(orgOnly.warnings).toContain(NO_SUBJECT);
    for (const [csr, d, subject] of [
      [csrWith('/CN=csr-int'), {}, 'CN=csr-int'],
      [csrWith('/'), { common_name: 'asked-int' }, 'CN=asked-int'],
      [csrWith('/'), { organization: 'Asked Org' }, 'O=Asked Org'],
      [csrWith('/O=CSR Org'), { use_csr_values: true }, 'O=CSR Org'],
    ] as const) {
      const r = await sign(csr, d);
      expect(subjectOf(r.data.certificate)).toBe(subject);
      expect(r.warnings ?? []).not.toContain(NO_SUBJECT);
    }
  });

  it('a leaf without a CN (require_cn=false) gets no such warning: Vault has none for leaves', async () => {
    const { call, ok } = backendMount('pki');
    await ok('update', 'config/urls', { issuing_certificates: 'http://pki.example/ca' });
    await ok('update', 'root/generate/internal', { common_name: 'Leaf Root', key_type: 'ec', ttl: '87600h' });
    await ok('update', 'roles/nocn', { allow_any_name: true, key_type: 'ec', require_cn: false, ttl: '1h' });
    const leaf = await call('update', 'issue/nocn', { alt_names: 'leaf.example.com' });
    expect(subjectOf(leaf.data.certificate)).toBe('');
    expect(leaf.warnings ?? []).toEqual([]);
  });
});
