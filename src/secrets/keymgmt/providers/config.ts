// kms/<name> configuration: which provider, where its keys go (key_collection), how to
// authenticate (credentials, write-only), and endpoint overrides. Credential names follow
// Vault Enterprise's keymgmt API. Ambient credentials (the SDK's default chain:
// environment, instance metadata, workload identity) are used only when the operator
// allows them with PLUGIN_AMBIENT_CREDENTIALS=true; credential files only when listed in
// PLUGIN_CREDENTIAL_FILES.
import { operatorSetting } from '../../../goplugin/env';
import { operatorAllows } from '../../../util/files';
import { UserError } from '../../framework';
import { coerceField, secretValues, type Schema } from '../../../schema';
import type { KmsConfig, ProviderName } from './types';
import { AZURE_CLOUDS } from '../../../keys/clients/azure-clouds';
import { parseServiceAccount, type ServiceAccount } from '../../../keys/clients/gcp-credentials';
import { keyErrorToUser } from '../../key-errors';
import {
  AMBIENT_ENDPOINTS,
  CREDENTIAL_FILES,
  ambientCredentialsAllowed,
  ambientEndpointAllowed,
  ambientEndpointRefusal,
  readCredentialFile,
} from '../../../keys/operator';
import { AWS_REGION } from '../keys';

/** The credential names of each provider, in the plugin's schema language (every one a string). */
export const CREDENTIALS: Record<ProviderName, Schema> = {
  awskms: {
    access_key: { type: 'string', description: 'AWS access key id' },
    secret_key: { type: 'string', description: 'AWS secret access key', secret: true },
    session_token: { type: 'string', description: 'AWS session token (temporary credentials)', secret: true },
    endpoint: { type: 'string', description: 'KMS endpoint URL (VPC endpoints); same as the top-level endpoint field' },
  },
  gcpckms: {
    service_account_file: {
      type: 'string',
      description: "path of a service-account key file; the path must be in the operator's PLUGIN_CREDENTIAL_FILES allowlist",
    },
    service_account_json: { type: 'string', description: 'the service-account key JSON itself', secret: true },
  },
  azurekeyvault: {
    tenant_id: { type: 'string', description: 'Azure AD tenant id' },
    client_id: { type: 'string', description: 'application (client) id' },
    client_secret: { type: 'string', description: 'client secret', secret: true },
    environment: { type: 'string', description: 'AzurePublicCloud (default), AzureChinaCloud or AzureUSGovernmentCloud' },
  },
};

const COLLECTION: Record<ProviderName, { re: RegExp; what: string }> = {
  awskms: { re: AWS_REGION, what: 'an AWS region such as us-east-1' },
  gcpckms: {
    re: /^projects\/[A-Za-z0-9.:_-]{1,100}\/locations\/[a-z0-9-]{1,63}\/keyRings\/[A-Za-z0-9_-]{1,63}$/,
    what: 'a key ring resource id: projects/<project>/locations/<location>/keyRings/<ring>',
  },
  azurekeyvault: { re: /^[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]$/, what: 'a Key Vault name (3-24 letters, digits and dashes)' },
};

/** Refuse a key_collection that is not of the provider's form (a 400 saying what it must be). */
export function checkCollection(provider: ProviderName, value: string): void {
  const c = COLLECTION[provider];
  if (!c.re.test(value)) throw new UserError(`key_collection for ${provider} must be ${c.what}`);
}

/**
 * Vault takes credentials as a map, or as "k=v" pairs: a list from a repeated
 * `credentials=k=v` on the CLI, one string when it is given once (Vault's documented
 * `credentials=service_account_file=...` for gcpckms).
 */
export function parseCredentials(provider: ProviderName, raw: unknown): Record<string, string> {
  let pairs: [string, unknown][];
  if (typeof raw === 'string') raw = [raw];
  if (Array.isArray(raw)) {
    pairs = raw.map((item) => {
      const s = String(item);
      const eq = s.indexOf('=');
      if (eq < 1) throw new UserError('credentials: each list item must be key=value');
      return [s.slice(0, eq), s.slice(eq + 1)];
    });
  } else if (raw && typeof raw === 'object') {
    pairs = Object.entries(raw as Record<string, unknown>);
  } else {
    throw new UserError('credentials must be a map of names to values');
  }
  const known = CREDENTIALS[provider];
  const out: Record<string, string> = {};
  for (const [k, v] of pairs) {
    if (!Object.hasOwn(known, k))
      throw new UserError(`credentials: unknown name "${k.slice(0, 40)}" for ${provider} (known: ${Object.keys(known).join(', ')})`);
    if (v === undefined || v === null || v === '') throw new UserError(`credentials.${k} must be a non-empty string`);
    out[k] = coerceField(`credentials.${k}`, known[k], v, (m) => new UserError(m)) as string;
  }
  return out;
}

const AMBIENT_REFUSED =
  'and ambient credentials (environment, instance metadata, workload identity) are not allowed: the operator can allow them by registering the plugin with VAULT_PLUGIN_AMBIENT_CREDENTIALS=true';

/** Check credentials are complete, or that the operator allows the SDK's default chain. */
export function checkCredentials(c: KmsConfig): void {
  const cr = c.credentials;
  let explicit: boolean;
  switch (c.provider) {
    case 'awskms':
      if ((cr.access_key === undefined) !== (cr.secret_key === undefined)) throw new UserError('credentials: access_key and secret_key must be given together');
      explicit = cr.access_key !== undefined;
      break;
    case 'gcpckms':
      if (cr.service_account_file !== undefined && cr.service_account_json !== undefined)
        throw new UserError('credentials: give service_account_file or service_account_json, not both');
      if (cr.service_account_file !== undefined && !operatorAllows(cr.service_account_file, operatorSetting(CREDENTIAL_FILES))) {
        throw new UserError(
          'credentials.service_account_file: this path is not allowed by the operator (list credential files in VAULT_PLUGIN_CREDENTIAL_FILES at plugin registration, or give service_account_json)',
        );
      }
      explicit = cr.service_account_file !== undefined || cr.service_account_json !== undefined;
      break;
    case 'azurekeyvault':
      if ((cr.client_id === undefined) !== (cr.client_secret === undefined))
        throw new UserError('credentials: client_id and client_secret must be given together');
      if (cr.client_id !== undefined && cr.tenant_id === undefined) throw new UserError('credentials: tenant_id is required with client_id and client_secret');
      if (cr.environment !== undefined && !AZURE_CLOUDS[cr.environment.toUpperCase()])
        throw new UserError(`credentials.environment must be one of AzurePublicCloud, AzureChinaCloud, AzureUSGovernmentCloud`);
      explicit = cr.client_secret !== undefined;
      break;
  }
  if (!explicit && !ambientCredentialsAllowed()) throw new UserError(`kms "${c.name}": no ${c.provider} credentials are configured, ${AMBIENT_REFUSED}`);
  // A credential file the operator allows holds the operator's identity, not the writer's: as
  // ambient credentials, it signs only for endpoints the operator lists (the writer chooses
  // endpoint, and its server would receive bearer tokens for that account).
  const operatorFile = c.provider === 'gcpckms' && cr.service_account_file !== undefined;
  if (!explicit || operatorFile) {
    for (const e of [c.endpoint, c.authority_host, cr.endpoint])
      if (e && !ambientEndpointAllowed(e))
        throw new UserError(
          operatorFile
            ? `kms "${c.name}": credentials.service_account_file (the operator's) is not sent to a configured endpoint unless the operator lists that endpoint in VAULT_${AMBIENT_ENDPOINTS}; give service_account_json instead`
            : ambientEndpointRefusal(`kms "${c.name}"`),
        );
  }
}

/** Service-account key for gcpckms, read (bounded) from an allowed file or given inline; undefined means ambient. */
export async function gcpServiceAccount(c: KmsConfig): Promise<ServiceAccount | undefined> {
  checkCredentials(c);
  try {
    if (c.credentials.service_account_file !== undefined) {
      // The managed keys' reader: the path is resolved once, checked against the operator's
      // list and that same file read (bounded, non-blocking), so a link re-pointed after the
      // check above cannot redirect the read.
      const text = await readCredentialFile('credentials.service_account_file', c.credentials.service_account_file);
      return parseServiceAccount(text.toString('utf8'), 'credentials.service_account_file');
    }
    const json = c.credentials.service_account_json;
    return json === undefined ? undefined : parseServiceAccount(json, 'credentials.service_account_json');
  } catch (e) {
    throw keyErrorToUser(e);
  }
}

/** Every secret credential value, for redacting provider errors. */
export function secretsOf(c: KmsConfig): string[] {
  return secretValues(CREDENTIALS[c.provider], c.credentials);
}

/** kms/<name> as a read returns it: never the credentials. */
export function publicView(c: KmsConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { name: c.name, provider: c.provider, key_collection: c.key_collection };
  for (const k of ['endpoint', 'endpoint_ca', 'authority_host'] as const) if (c[k]) out[k] = c[k];
  return out;
}
