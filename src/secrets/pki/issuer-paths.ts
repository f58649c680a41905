// Managing a mount's issuers and keys, after current Vault's (1.11+) API: issuers (LIST),
// issuer/<ref> (read, update, delete), issuer/<ref>/json|pem|der, config/issuers, keys
// (LIST), key/<ref> (read, update, delete), config/keys. Vault 1.8, the binary the real-Vault
// tests run, has no issuers API, so these follow current Vault's documentation.
import { X509Certificate } from 'node:crypto';
import { putJson } from '../../storage/storage';
import { UserError, rawResponse, type PathDef } from '../framework';
import { x509 } from './ca';
import type { PkiCaches } from './index';
import {
  ISSUERS_CONFIG_KEY,
  ISSUER_USAGES,
  KEYS_CONFIG_KEY,
  checkName,
  issuerKey,
  issuerUsage,
  keyKey,
  type IssuerEntry,
  type KeyEntry,
  type LeafNotAfterBehavior,
} from './issuers';
import { DEFAULT_FOLLOWS_LATEST_ISSUER_FIELD, ISSUER_REF } from './issuer-ref';
import { CRL_PREFIX } from './revoke';
import { setDefaultIssuer } from './root';
import { SIGNATURE_ALGORITHM_NAMES, signatureAlgorithmKind, signatureAlgorithmName, withSignatureAlgorithm } from './cert-writer';

const KEY_REF = '(?<key_ref>[\\w.-]{1,128})';
const REF_FIELD = { type: 'string' as const, description: 'issuer_id, issuer_name, or "default".' };

/** An issuer as issuer/<ref> answers it (and issuer/<ref>/revoke). */
export function issuerView(i: IssuerEntry) {
  return {
    issuer_id: i.issuer_id,
    issuer_name: i.issuer_name,
    key_id: i.key_id,
    certificate: i.certificate,
    ca_chain: [i.certificate, ...i.ca_chain],
    manual_chain: null,
    leaf_not_after_behavior: i.leaf_not_after_behavior,
    usage: issuerUsage(i),
    revocation_signature_algorithm: i.revocation_signature_algorithm ?? '',
    revoked: i.revoked ?? false,
    revocation_time: i.revocation_time ?? 0,
    ...(i.revoked ? { revocation_time_rfc3339: new Date((i.revocation_time ?? 0) * 1000).toISOString() } : {}),
  };
}

function keyView(k: KeyEntry) {
  return { key_id: k.key_id, key_name: k.key_name, key_type: k.key_type, ...(k.key.kind === 'managed' ? { managed_key_name: k.key.managed_key_name } : {}) };
}

/** issuers, issuer/<ref>[/json|pem|der], config/issuers, keys, key/<ref> and config/keys. */
export function issuerPaths(caches: PkiCaches): PathDef[] {
  const reg = (s: Parameters<PkiCaches['ca']['registry']>[0]) => caches.ca.registry(s);
  return [
    {
      pattern: 'issuers/?',
      fields: {},
      synopsis: 'List the issuers of this mount.',
      description: "keys: issuer_ids; key_info: each one's issuer_name and whether it is the default.",
      operations: {
        list: async (r) => {
          const g = await reg(r.storage);
          const ids = [...g.issuers.keys()].sort();
          return {
            data: {
              keys: ids,
              key_info: Object.fromEntries(ids.map((id) => [id, { issuer_name: g.issuers.get(id)!.issuer_name, is_default: id === g.config.default }])),
            },
          };
        },
      },
    },
    {
      pattern: `issuer/${ISSUER_REF}`,
      fields: {
        issuer_ref: REF_FIELD,
        issuer_name: { type: 'string', description: 'A new name (unique in the mount; not "default"; empty to remove it).' },
        leaf_not_after_behavior: {
          type: 'string',
          allowed: ['err', 'truncate', 'permit'],
          description: "A certificate that would outlive this issuer: refused (err), cut to the issuer's notAfter (truncate), or issued as asked (permit).",
        },
        usage: { type: 'strings', description: `What the issuer may do: ${ISSUER_USAGES.join(', ')}.` },
        manual_chain: { type: 'strings', description: 'Not supported here (the chain is the one the issuer was imported with).' },
        revocation_signature_algorithm: {
          type: 'string',
          description:
            "The signature algorithm of its CRLs, by Vault's names: SHA256WithRSA, SHA384WithRSA, SHA512WithRSA, SHA256WithRSAPSS, SHA384WithRSAPSS, SHA512WithRSAPSS, ECDSAWithSHA256, ECDSAWithSHA384, ECDSAWithSHA512, Ed25519 (any case); empty: the key's default. A root made here starts with its own certificate's.",
        },
      },
      synopsis: 'Read, update or delete one issuer.',
      description: 'An update changes only the fields given.',
      existence: async (r) => (await reg(r.storage)).findIssuer(r.data.str('issuer_ref')) !== undefined,
      operations: {
        read: async (r) => ({ data: issuerView((await reg(r.storage)).issuer(r.data.str('issuer_ref'))) }),
        update: async (r) => {
          const g = await reg(r.storage);
          const cur = g.issuer(r.data.str('issuer_ref'));
          const next: IssuerEntry = { ...cur };
          if (r.data.has('issuer_name')) {
            const name = r.data.str('issuer_name');
            checkName('issuer', name);
            if (g.issuerNameTaken(name, cur.issuer_id)) throw new UserError(`an issuer with the name "${name}" already exists`);
            next.issuer_name = name;
          }
          if (r.data.has('leaf_not_after_behavior')) next.leaf_not_after_behavior = r.data.str('leaf_not_after_behavior') as LeafNotAfterBehavior;
          if (r.data.has('usage')) {
            const usage = r.data.get<string[]>('usage');
            const bad = usage.find((u) => !(ISSUER_USAGES as readonly string[]).includes(u));
            if (bad) throw new UserError(`usage: unknown usage "${bad.slice(0, 40)}" (${ISSUER_USAGES.join(', ')})`);
            if (cur.revoked && usage.includes('issuing-certificates'))
              throw new UserError(
                'This issuer was revoked; unable to modify its usage to include certificate signing again. Reissue this certificate (preferably with a new key) and modify that entry instead.',
              );
            next.usage = [...new Set(usage)];
          }
          if (r.data.has('revocation_signature_algorithm')) {
            const given = r.data.str('revocation_signature_algorithm');
            const name = given ? signatureAlgorithmName(given) : '';
            if (name === undefined)
              throw new UserError(`Unknown signature algorithm value: ${given.slice(0, 40)} - valid values are ${SIGNATURE_ALGORITHM_NAMES.join(', ')}`);
            // Refused now rather than at the next CRL: the algorithm must suit the issuer's key.
            const keyKind = new X509Certificate(cur.certificate).publicKey.asymmetricKeyType;
            if (name && signatureAlgorithmKind(name) !== keyKind)
              throw new UserError(`revocation_signature_algorithm: ${name} cannot be used with this issuer's ${keyKind} key`);
            // A managed key signs with its one hash: another is refused here too, not by every later revocation.
            if (name && g.keys.has(cur.key_id)) withSignatureAlgorithm(await (await caches.ca.require(r.storage, cur.issuer_id)).signer(), name);
            next.revocation_signature_algorithm = name;
          }
          if (r.data.has('manual_chain') && r.data.get<string[]>('manual_chain').length)
            throw new UserError("manual_chain is not supported here: an issuer's chain is the one it was imported with");
          await putJson(r.storage, issuerKey(cur.issuer_id), next);
          return { data: issuerView(next) };
        },
        delete: async (r) => {
          const g = await reg(r.storage);
          const cur = g.findIssuer(r.data.str('issuer_ref'));
          if (!cur) return undefined;
          await r.storage.delete(issuerKey(cur.issuer_id));
          await r.storage.delete(`${CRL_PREFIX}${cur.issuer_id}`);
          // Its key stays (other issuers may use it; keys are deleted at key/<ref>).
          if (g.config.default === cur.issuer_id) {
            await setDefaultless(r.storage, g.config);
            return { warnings: ['the default issuer was deleted: set another with config/issuers'] };
          }
          return undefined;
        },
      },
    },
    {
      pattern: `issuer/${ISSUER_REF}/(?<format>json|pem|der)`,
      fields: { issuer_ref: REF_FIELD, format: { type: 'string', description: '' } },
      synopsis: "An issuer's certificate: JSON (with its chain), raw PEM, or raw DER.",
      description: 'As current Vault; readable without a token where Vault allows it (1.11+).',
      operations: {
        read: async (r) => {
          const i = (await reg(r.storage)).issuer(r.data.str('issuer_ref'));
          const f = r.data.str('format');
          if (f === 'pem') return rawResponse(i.certificate, 'application/pem-certificate-chain');
          if (f === 'der') return rawResponse(Buffer.from(new (x509().X509Certificate)(i.certificate).rawData), 'application/pkix-cert');
          return { data: { issuer_id: i.issuer_id, issuer_name: i.issuer_name, certificate: i.certificate, ca_chain: [i.certificate, ...i.ca_chain] } };
        },
      },
    },
    {
      pattern: 'config/issuers',
      fields: {
        default: { type: 'string', description: 'The default issuer: issuer_id, issuer_name.' },
        default_follows_latest_issuer: DEFAULT_FOLLOWS_LATEST_ISSUER_FIELD,
      },
      synopsis: 'Read or set the default issuer.',
      description: 'The default issuer serves ca, ca_chain, cert/ca and crl, and signs for roles whose issuer_ref is "default".',
      operations: {
        read: async (r) => {
          const g = await reg(r.storage);
          return { data: { default: g.config.default, default_follows_latest_issuer: g.config.default_follows_latest_issuer } };
        },
        update: async (r) => {
          if (r.data.has('default')) return setDefaultIssuer(r, r.data.str('default'), caches);
          const g = await reg(r.storage);
          const config = { ...g.config, default_follows_latest_issuer: r.data.bool('default_follows_latest_issuer') };
          await putJson(r.storage, ISSUERS_CONFIG_KEY, config);
          return { data: config };
        },
      },
    },
    {
      pattern: 'keys/?',
      fields: {},
      synopsis: 'List the keys of this mount.',
      description: "keys: key_ids; key_info: each one's key_name.",
      operations: {
        list: async (r) => {
          const g = await reg(r.storage);
          const ids = [...g.keys.keys()].sort();
          return { data: { keys: ids, key_info: Object.fromEntries(ids.map((id) => [id, { key_name: g.keys.get(id)!.key_name }])) } };
        },
      },
    },
    {
      pattern: `key/${KEY_REF}`,
      fields: {
        key_ref: { type: 'string', description: 'key_id, key_name, or "default".' },
        key_name: { type: 'string', description: 'A new name (unique in the mount; not "default").' },
      },
      synopsis: 'Read, rename or delete one key.',
      description: 'A key an issuer uses cannot be deleted. The private key is never returned.',
      existence: async (r) => (await reg(r.storage)).findKey(r.data.str('key_ref')) !== undefined,
      operations: {
        read: async (r) => ({ data: keyView((await reg(r.storage)).key(r.data.str('key_ref'))) }),
        update: async (r) => {
          const g = await reg(r.storage);
          const cur = g.key(r.data.str('key_ref'));
          const name = r.data.str('key_name');
          checkName('key', name);
          if (g.keyNameTaken(name, cur.key_id)) throw new UserError(`a key with the name "${name}" already exists`);
          const next = { ...cur, key_name: name };
          await putJson(r.storage, keyKey(cur.key_id), next);
          return { data: keyView(next) };
        },
        delete: async (r) => {
          const g = await reg(r.storage);
          const cur = g.findKey(r.data.str('key_ref'));
          if (!cur) return undefined;
          const user = [...g.issuers.values()].find((i) => i.key_id === cur.key_id);
          if (user) throw new UserError(`the key is in use by issuer ${user.issuer_name || user.issuer_id}: delete that issuer first`);
          await r.storage.delete(keyKey(cur.key_id));
          if (g.defaultKey === cur.key_id) await r.storage.delete(KEYS_CONFIG_KEY);
          return undefined;
        },
      },
    },
    {
      pattern: 'config/keys',
      fields: { default: { type: 'string', description: 'The default key: key_id or key_name.' } },
      synopsis: 'Read or set the default key (used by type existing when key_ref is "default").',
      description: '',
      operations: {
        read: async (r) => ({ data: { default: (await reg(r.storage)).defaultKey } }),
        update: async (r) => {
          const k = (await reg(r.storage)).key(r.data.str('default'));
          await putJson(r.storage, KEYS_CONFIG_KEY, { default: k.key_id });
          return { data: { default: k.key_id } };
        },
      },
    },
  ];
}

async function setDefaultless(s: Parameters<typeof putJson>[0], config: { default: string; default_follows_latest_issuer: boolean }) {
  await putJson(s, ISSUERS_CONFIG_KEY, { ...config, default: '' });
}
