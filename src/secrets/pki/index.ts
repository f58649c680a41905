// PKI: a CA per mount (its key stored, or a managed key in an HSM/KMS), roles, issue,
// sign, revoke, CRL, and the fetch endpoints, with Vault's API.
import type { PathDef } from '../framework';
import type { ManagedKeys } from '../managed-keys';
import { rootPaths } from './root';
import { rolePaths } from './roles';
import { issuePaths } from './issue';
import { revokePaths } from './revoke';
import { fetchPaths } from './fetch';
import { urlPaths } from './urls';
import { maintenancePaths } from './maintenance';

export function pkiPaths(managed: ManagedKeys): PathDef[] {
  return [...rootPaths(managed), ...rolePaths(), ...issuePaths(managed), ...revokePaths(managed), ...fetchPaths(), ...urlPaths(), ...maintenancePaths(managed)];
}
