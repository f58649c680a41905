// The PKI engine's declaration for the registry (../engines.ts).
import type { Engine } from '../engine';
import { PkiCaches, pkiPaths } from './index';
import { autoTidy, stopTidy } from './tidy';

/** PKI for the engine registry: public fetch paths, seal-wrapped CA keys, and per-mount caches kept current by writes and invalidations. */
export const pkiEngine: Engine = {
  name: 'pki',
  help: "vault-plugin-ts, PKI engine: a CA for this mount, roles, issue, sign, revoke and CRL, with Vault's PKI API.",
  // Vault's PKI serves its CA, chain, CRL and issued certificates to anyone: relying
  // parties fetch them with no Vault token (AIA and CRL distribution point URLs).
  // issuer/+/…: "+" matches one segment in current Vault (1.11+); Vault 1.8 has no "+" (these then need a token there).
  specialPaths: {
    root: [],
    unauthenticated: [
      'cert/*',
      'ca/pem',
      'ca_chain',
      'ca',
      'crl/pem',
      'crl',
      'issuer/+/pem',
      'issuer/+/der',
      'issuer/+/json',
      'issuer/+/crl',
      'issuer/+/crl/pem',
      'issuer/+/crl/der',
      'ocsp',
      'ocsp/*',
    ],
    binary: ['ocsp'],
    local_storage: [],
    seal_wrap_storage: ['pki/ca', 'pki/pending-intermediate', 'pki/keys/'],
  },
  create({ storage, managedKeys }) {
    const caches = new PkiCaches(managedKeys);
    const watched = caches.watching(storage);
    return {
      paths: pkiPaths(managedKeys, caches),
      // Writes through the mount refresh its caches at once; InvalidateKey covers other nodes.
      storage: watched,
      invalidate: (key) => caches.invalidate(key),
      // config/auto-tidy runs from Vault's periodic call; a running tidy stops with the mount.
      periodic: async () => void (await autoTidy(watched, caches)),
      cleanup: async () => void (await stopTidy(caches)),
    };
  },
};
