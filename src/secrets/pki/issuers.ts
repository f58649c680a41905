// A PKI mount's issuers and keys, as current Vault (1.11+) keeps them: any number of CA
// certificates ("issuers", each with a UUID issuer_id and an optional unique issuer_name),
// each signing with one of the mount's keys (UUID key_id, optional key_name), and one
// default issuer (config/issuers) that ca, ca_chain, cert/ca, crl, issue/ and sign/ use
// unless told otherwise (issuer_ref). Vault 1.8 had one CA per mount (pki/ca here); a mount
// written by an older version of this plugin is migrated on first read, as Vault migrates
// its legacy CA bundle: the legacy CA becomes the default issuer named "current".
import { X509Certificate, createHash, randomUUID, webcrypto } from 'node:crypto';
import { getJson, putJson, type Storage } from '../../storage/storage';
import type { ManagedKey } from '../../keys/types';
import { UserError } from '../framework';
import { CA_KEY, PENDING_KEY, parseIssuer, signerFor, x509, type CaSigner, type Issuer, type StoredCa } from './ca';

/** What to do with a certificate that would outlive its issuer: refuse it (err), cut it to the issuer's notAfter (truncate), or allow it (permit). */
export type LeafNotAfterBehavior = 'err' | 'truncate' | 'permit';
/** Vault's issuer usages, in Vault's order. */
export const ISSUER_USAGES = ['read-only', 'issuing-certificates', 'crl-signing', 'ocsp-signing'] as const;

/** An issuer as stored at pki/issuers/<issuer_id>. */
export interface IssuerEntry {
  issuer_id: string;
  issuer_name: string;
  key_id: string;
  certificate: string;
  /** The issuer's own issuers (not itself), as set-signed or config/ca gave them. */
  ca_chain: string[];
  crl_number: number;
  leaf_not_after_behavior: LeafNotAfterBehavior;
  usage: string[];
  /** Vault's name of the algorithm its CRLs are signed with ("SHA256WithRSAPSS", ...); absent or "": the key's default. */
  revocation_signature_algorithm?: string;
  /** Revoked by issuer/<ref>/revoke (for good): it issues no more and is on its parent's CRL. */
  revoked?: boolean;
  /** When it was revoked (Unix seconds). */
  revocation_time?: number;
}

/** A CA key as stored at pki/keys/<key_id>: PKCS#8 in storage, or the name of a managed key. */
export interface KeyEntry {
  key_id: string;
  key_name: string;
  key: StoredCa['key'];
  /** rsa | ec (the CA key kinds). */
  key_type: string;
}

/** config/issuers: the default issuer's id, and whether each new issuer becomes the default. */
export interface IssuersConfig {
  default: string;
  default_follows_latest_issuer: boolean;
}

/** Storage prefix of the issuers (IssuerEntry), by issuer_id. */
export const ISSUER_PREFIX = 'pki/issuers/';
/** Storage prefix of the CA keys (KeyEntry), by key_id. */
export const KEY_PREFIX = 'pki/keys/';
/** Storage key of IssuersConfig. */
export const ISSUERS_CONFIG_KEY = 'pki/config/issuers';
/** Storage key of config/keys (the default key). */
export const KEYS_CONFIG_KEY = 'pki/config/keys';
/** Storage key of one issuer. */
export const issuerKey = (id: string) => `${ISSUER_PREFIX}${id}`;
/** Storage key of one CA key. */
export const keyKey = (id: string) => `${KEY_PREFIX}${id}`;

/** Does a storage key belong to the issuer registry (so a change to it drops the cache)? */
export const isRegistryKey = (k: string) =>
  k === CA_KEY || k === PENDING_KEY || k === ISSUERS_CONFIG_KEY || k === KEYS_CONFIG_KEY || k.startsWith(ISSUER_PREFIX) || k.startsWith(KEY_PREFIX);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// Vault's names: framework.GenericNameRegex (word characters, inner "-" and ".").
const NAME = /^\w(?:[\w.-]*\w)?$/;

/** A UUID derived from content, so a migration run twice (or on two nodes) names the same things. */
function stableUuid(what: string): string {
  const h = createHash('sha256').update(what).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Refuses an issuer_name or key_name Vault would refuse: "default", a UUID, over 128 characters, or not a generic name ("" means none). */
export function checkName(kind: 'issuer' | 'key', name: string): void {
  if (name === '') return;
  if (name === 'default') throw new UserError(`${kind}_name "default" is reserved`);
  if (name.length > 128 || !NAME.test(name) || UUID.test(name))
    throw new UserError(`${kind}_name must be letters, digits, "_", "-" and "." (not a UUID), at most 128 characters`);
}

/** Every issuer and key of the mount, and which are the defaults. */
export class Registry {
  constructor(
    readonly issuers: Map<string, IssuerEntry>,
    readonly keys: Map<string, KeyEntry>,
    readonly config: IssuersConfig,
    readonly defaultKey: string,
  ) {}

  /** "default", an issuer_id, or an issuer_name → the issuer; undefined if none. */
  findIssuer(ref: string): IssuerEntry | undefined {
    const r = ref || 'default';
    if (r === 'default') return this.issuers.get(this.config.default);
    return this.issuers.get(r) ?? [...this.issuers.values()].find((i) => i.issuer_name && i.issuer_name === r);
  }

  issuer(ref: string): IssuerEntry {
    const i = this.findIssuer(ref);
    if (i) return i;
    if ((ref || 'default') === 'default')
      throw new UserError(
        'no default issuer is configured on this mount: generate a root (root/generate/...), set a signed intermediate, or set config/issuers',
      );
    throw new UserError(`unable to resolve issuer id for reference: ${ref.slice(0, 130)}`);
  }

  findKey(ref: string): KeyEntry | undefined {
    const r = ref || 'default';
    if (r === 'default') return this.keys.get(this.defaultKey);
    return this.keys.get(r) ?? [...this.keys.values()].find((k) => k.key_name && k.key_name === r);
  }

  key(ref: string): KeyEntry {
    const k = this.findKey(ref);
    if (!k) throw new UserError(`unable to resolve key id for reference: ${String(ref).slice(0, 130)}`);
    return k;
  }

  issuerNameTaken(name: string, except?: string): boolean {
    return Boolean(name) && [...this.issuers.values()].some((i) => i.issuer_name === name && i.issuer_id !== except);
  }

  keyNameTaken(name: string, except?: string): boolean {
    return Boolean(name) && [...this.keys.values()].some((k) => k.key_name === name && k.key_id !== except);
  }
}

async function readRegistry(s: Storage): Promise<Registry> {
  const [ids, keyIds] = await Promise.all([s.list(ISSUER_PREFIX), s.list(KEY_PREFIX)]);
  const issuers = new Map<string, IssuerEntry>();
  const keys = new Map<string, KeyEntry>();
  for (const e of await Promise.all(ids.map((id) => getJson<IssuerEntry>(s, issuerKey(id))))) if (e) issuers.set(e.issuer_id, e);
  for (const e of await Promise.all(keyIds.map((id) => getJson<KeyEntry>(s, keyKey(id))))) if (e) keys.set(e.key_id, e);
  const config = (await getJson<IssuersConfig>(s, ISSUERS_CONFIG_KEY)) ?? { default: '', default_follows_latest_issuer: false };
  const keysConfig = await getJson<{ default: string }>(s, KEYS_CONFIG_KEY);
  return new Registry(issuers, keys, config, keysConfig?.default ?? '');
}

/**
 * The registry, with a legacy single-CA mount (pki/ca, pki/pending-intermediate) migrated
 * first. The migration writes the new entries before it deletes the legacy ones; its IDs
 * come from the content, so an interrupted or concurrent migration converges.
 */
export async function loadRegistry(s: Storage, managed: (name: string) => Promise<ManagedKey>): Promise<Registry> {
  const legacy = await getJson<StoredCa>(s, CA_KEY);
  const pending = await getJson<{ key: StoredCa['key'] }>(s, PENDING_KEY);
  if (!legacy && !pending) return readRegistry(s);
  const reg = await readRegistry(s);
  // Storage that refuses writes (a node that may not write): serve the migrated view from
  // memory, with the same IDs, and leave the writing to the next node that can.
  let writable = true;
  const persist = async (write: () => Promise<void>) => {
    if (!writable) return;
    try {
      await write();
    } catch {
      writable = false;
    }
  };
  const migrateKey = async (key: StoredCa['key'], name: string): Promise<KeyEntry> => {
    const id = stableUuid(`key:${JSON.stringify(key)}`);
    const existing = reg.keys.get(id);
    if (existing) return existing;
    let kind = 'unknown';
    try {
      kind = (await signerFor(key, managed)).spec.kind;
    } catch {
      /* a managed key not reachable now: its type stays unknown */
    }
    const entry: KeyEntry = { key_id: id, key_name: reg.keyNameTaken(name) ? '' : name, key, key_type: kind };
    await persist(() => putJson(s, keyKey(id), entry));
    reg.keys.set(id, entry);
    return entry;
  };
  let defaultKey = reg.defaultKey;
  if (legacy) {
    const key = await migrateKey(legacy.key, 'current');
    const id = stableUuid(`issuer:${legacy.certificate}`);
    if (!reg.issuers.has(id)) {
      const entry: IssuerEntry = {
        issuer_id: id,
        issuer_name: reg.issuerNameTaken('current') ? '' : 'current',
        key_id: key.key_id,
        certificate: legacy.certificate,
        ca_chain: legacy.ca_chain,
        crl_number: legacy.crl_number,
        leaf_not_after_behavior: 'err',
        usage: [...ISSUER_USAGES],
      };
      await persist(() => putJson(s, issuerKey(id), entry));
      reg.issuers.set(id, entry);
    }
    if (!reg.issuers.has(reg.config.default)) {
      reg.config.default = id;
      await persist(() => putJson(s, ISSUERS_CONFIG_KEY, reg.config));
    }
    if (!reg.keys.has(defaultKey)) {
      defaultKey = key.key_id;
      await persist(() => putJson(s, KEYS_CONFIG_KEY, { default: key.key_id }));
    }
    await persist(() => s.delete(CA_KEY));
  }
  if (pending) {
    await migrateKey(pending.key, '');
    await persist(() => s.delete(PENDING_KEY));
  }
  return writable ? readRegistry(s) : new Registry(reg.issuers, reg.keys, reg.config, defaultKey);
}

/** An issuer ready to sign: its entry, its parsed certificate, its key's signer. */
export interface ReadyIssuer {
  entry: IssuerEntry;
  issuer: Issuer;
  signer(): Promise<CaSigner>;
  /** The chain served with what it signs: itself, then its issuers. */
  chain: string[];
}

/**
 * The registry and the ready issuers, read, parsed and imported once (as Vault's PKI caches
 * its issuers), dropped whenever a registry key is written through this mount or Vault
 * invalidates one.
 */
export class IssuerCache {
  private entry?: Promise<Registry>;
  private ready = new Map<string, ReadyIssuer>();

  constructor(private readonly managed: (name: string) => Promise<ManagedKey>) {}

  registry(s: Storage): Promise<Registry> {
    let p = this.entry;
    if (!p) {
      p = loadRegistry(s, this.managed);
      this.entry = p;
      p.catch(() => {
        if (this.entry === p) this.entry = undefined;
      });
    }
    return p;
  }

  invalidate(): void {
    this.entry = undefined;
    this.ready = new Map();
  }

  /** The issuer `ref` names ("default" when empty), ready to sign. */
  async require(s: Storage, ref = 'default'): Promise<ReadyIssuer> {
    const reg = await this.registry(s);
    const entry = reg.issuer(ref);
    let r = this.ready.get(entry.issuer_id);
    if (!r || r.entry !== entry) {
      const key = reg.keys.get(entry.key_id)?.key;
      let signer: Promise<CaSigner> | undefined;
      const noKey = () => Promise.reject(new UserError(`issuer ${entry.issuer_name || entry.issuer_id} has no key in this mount: it cannot sign`));
      r = {
        entry,
        issuer: parseIssuer(entry.certificate),
        chain: [entry.certificate, ...entry.ca_chain],
        signer: () => {
          if (!key) return noKey();
          // A managed key's handle can change under us (ManagedKeys reopens it): ask each time.
          if (key.kind === 'managed') return signerFor(key, this.managed);
          if (!signer) {
            signer = signerFor(key, this.managed);
            signer.catch(() => {
              signer = undefined;
            });
          }
          return signer;
        },
      };
      this.ready.set(entry.issuer_id, r);
    }
    return r;
  }
}

/** Which registered key has this public key (SPKI DER)? */
export async function keyForPublicKey(reg: Registry, spki: Buffer, managed: (name: string) => Promise<ManagedKey>): Promise<KeyEntry | undefined> {
  for (const k of reg.keys.values()) {
    try {
      const signer = await signerFor(k.key, managed);
      if (Buffer.from(await webcrypto.subtle.exportKey('spki', signer.publicKey)).equals(spki)) return k;
    } catch {
      /* an unusable key matches nothing */
    }
  }
  return undefined;
}

/** Store a new key; its key_id is a fresh UUID. */
export async function addKey(s: Storage, reg: Registry, key: StoredCa['key'], keyType: string, name: string): Promise<KeyEntry> {
  checkName('key', name);
  if (reg.keyNameTaken(name)) throw new UserError(`a key with the name "${name}" already exists`);
  const entry: KeyEntry = { key_id: randomUUID(), key_name: name, key, key_type: keyType };
  await putJson(s, keyKey(entry.key_id), entry);
  if (!reg.keys.has(reg.defaultKey)) await putJson(s, KEYS_CONFIG_KEY, { default: entry.key_id });
  reg.keys.set(entry.key_id, entry);
  return entry;
}

/**
 * Store a new issuer for a key; it becomes the default when there is none (or when
 * config/issuers says default_follows_latest_issuer), as in Vault.
 */
export async function addIssuer(
  s: Storage,
  reg: Registry,
  certificate: string,
  caChain: string[],
  keyId: string,
  name: string,
  revocationSignatureAlgorithm = '',
): Promise<IssuerEntry> {
  checkName('issuer', name);
  if (reg.issuerNameTaken(name)) throw new UserError(`an issuer with the name "${name}" already exists`);
  const entry: IssuerEntry = {
    issuer_id: randomUUID(),
    issuer_name: name,
    key_id: keyId,
    certificate,
    ca_chain: caChain,
    crl_number: 0,
    leaf_not_after_behavior: 'err',
    usage: [...ISSUER_USAGES],
    ...(revocationSignatureAlgorithm ? { revocation_signature_algorithm: revocationSignatureAlgorithm } : {}),
  };
  await putJson(s, issuerKey(entry.issuer_id), entry);
  reg.issuers.set(entry.issuer_id, entry);
  if (!reg.issuers.has(reg.config.default) || reg.config.default_follows_latest_issuer) {
    reg.config.default = entry.issuer_id;
    await putJson(s, ISSUERS_CONFIG_KEY, reg.config);
  }
  return entry;
}

/** The existing issuer with exactly this certificate, if any (set-signed twice adds nothing). */
export function issuerWithCertificate(reg: Registry, pemText: string): IssuerEntry | undefined {
  const X = x509();
  const der = Buffer.from(new X.X509Certificate(pemText).rawData);
  return [...reg.issuers.values()].find((i) => Buffer.from(new X.X509Certificate(i.certificate).rawData).equals(der));
}

/** An issuer's usages as Vault prints them: comma-separated, in Vault's order. */
export const issuerUsage = (e: IssuerEntry) => ISSUER_USAGES.filter((u) => e.usage.includes(u)).join(',');

/** Refuses (400) to use an issuer for something its usage does not allow. */
export function requireUsage(e: IssuerEntry, usage: (typeof ISSUER_USAGES)[number]): void {
  if (!e.usage.includes(usage)) throw new UserError(`issuer ${e.issuer_name || e.issuer_id} is not allowed ${usage} (its usage: ${issuerUsage(e) || 'none'})`);
}

/** A certificate's serial as CRLs and pki/certs/ keys spell it: lower-case hex, whole bytes. */
export const certSerialHex = (c: X509Certificate) => {
  const h = c.serialNumber.toLowerCase();
  return h.length % 2 ? `0${h}` : h;
};

/** Whether `issuer`'s certificate signed `cert` (names chain and the signature verifies); a signature its key cannot check is not its. */
export function signedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/** The revoked issuers of the mount that `parent` signed (not itself): what goes on its CRL besides the leaves. */
export function revokedIssuersSignedBy(reg: Registry, parent: IssuerEntry): Array<{ serial: string; revocation_time: number }> {
  const revoked = [...reg.issuers.values()].filter((i) => i.revoked && i.issuer_id !== parent.issuer_id);
  if (!revoked.length) return [];
  const p = new X509Certificate(parent.certificate);
  const out: Array<{ serial: string; revocation_time: number }> = [];
  for (const i of revoked) {
    const c = new X509Certificate(i.certificate);
    if (signedBy(c, p)) out.push({ serial: certSerialHex(c), revocation_time: i.revocation_time ?? 0 });
  }
  return out;
}
