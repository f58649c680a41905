// The Key Management engine (Vault Enterprise's keymgmt API): keys Vault owns, copied to
// AWS KMS, Google Cloud KMS and Azure Key Vault with each provider's import protocol.
// Mounted with `vault secrets enable -path=keymgmt -options=engine=keymgmt vault-plugin-ts`.
import type { Storage } from '../../storage/storage';
import type { PathDef } from '../framework';
import { KeyStore } from './keys';
import { KmsStore, kmsPaths } from './kms';
import { DistStore, Distributor, distributionPaths } from './distribution';
import { keyPaths } from './key-paths';

/** The keymgmt mount's help text. */
export const KEYMGMT_HELP =
  "vault-plugin-ts, Key Management engine: keys Vault owns, distributed to AWS KMS, Google Cloud KMS and Azure Key Vault, with Vault Enterprise's keymgmt API.";

/** Every keymgmt path of a mount on `storage`. */
export function keymgmtPaths(storage: Storage): PathDef[] {
  const dists = new DistStore(storage);
  const x = new Distributor(new KeyStore(storage), new KmsStore(storage), dists);
  return [...keyPaths(x), ...kmsPaths(x.kms, (kms) => dists.keysIn(kms)), ...distributionPaths(x)];
}
