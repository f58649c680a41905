// One Key Vault client setup for the azurekeyvault managed keys (src/keys/azurekeyvault.ts)
// and keymgmt's Azure provider (src/secrets/keymgmt/providers/azurekeyvault.ts): a client
// secret credential, or Azure's default credential chain where the operator allows it
// (src/keys/operator.ts); sovereign clouds; vault URL, authority and CA overrides; bounded
// retries. Loads the SDK: import this only from those lazily loaded modules, never from
// the main bundle.
import type * as Akv from '@azure/keyvault-keys';
import type { TokenCredential } from '@azure/identity';
import { keyFailure, keyInvalid, sdkErrorName, sdkStatusCode, type KeyErrorKind } from '../errors';
import { requireAmbientCredentials } from '../operator';
import { AZURE_CLOUDS } from './azure-clouds';

/** What a Key Vault client is made from. */
export interface AzureClientConfig {
  /** Who asks, for error messages: the backend type and the key or kms name. */
  backend: string;
  name: string;
  /** Cloud name, any case (default AzurePublicCloud). */
  environment?: string;
  tenantId?: string;
  clientId?: string;
  /** undefined: Azure's default credential chain (only if the operator allows it). */
  clientSecret?: string;
  /** The config field to name when no client secret is given. */
  credentialField: string;
  /** Azure AD authority URL override (private clouds, emulators). */
  authorityHost?: string;
  /** The key vault's name: the URL is https://<vaultName>.<dnsSuffix ?? the cloud's suffix>. */
  vaultName: string;
  dnsSuffix?: string;
  /** Full vault URL override (private endpoints, emulators). */
  vaultUrl?: string;
  /** PEM of the CA behind vaultUrl / authorityHost (default: system roots). */
  endpointCa?: string;
}

/** The SDK module, the credential, and clients of the one vault. */
export interface AzureKeyVault {
  akv: typeof Akv;
  credential: TokenCredential;
  vaultUrl: string;
  /** Client options with at most `maxRetries` retries (besides the first attempt); pass them to CryptographyClient too. */
  clientOptions(maxRetries?: number): Akv.KeyClientOptions;
  keyClient(maxRetries?: number): Akv.KeyClient;
}

const RETRIES = { maxRetries: 3, retryDelayInMs: 200, maxRetryDelayInMs: 2000 }; // 4 attempts at most

/** Check the cloud and the credentials against the operator's rules, load the SDK and set up the clients. */
export function azureKeyVault(c: AzureClientConfig): AzureKeyVault {
  const cloud = AZURE_CLOUDS[(c.environment ?? 'AZUREPUBLICCLOUD').toUpperCase()];
  if (!cloud) throw keyInvalid(`environment must be one of ${Object.keys(AZURE_CLOUDS).join(', ')}`);
  if (c.clientSecret === undefined) {
    requireAmbientCredentials(c.backend, c.name, c.credentialField, c.vaultUrl);
    requireAmbientCredentials(c.backend, c.name, c.credentialField, c.authorityHost);
  }
  const akv = require('@azure/keyvault-keys') as typeof Akv;
  const identity = require('@azure/identity') as typeof import('@azure/identity');
  const tlsOptions = c.endpointCa ? { ca: c.endpointCa } : undefined;
  const credential =
    c.clientSecret !== undefined
      ? new identity.ClientSecretCredential(String(c.tenantId), String(c.clientId), c.clientSecret, {
          authorityHost: c.authorityHost ?? cloud.authority,
          // A custom authority is not one of Microsoft's: nothing to discover.
          disableInstanceDiscovery: !!c.authorityHost,
          tlsOptions,
          retryOptions: RETRIES,
        })
      : new identity.DefaultAzureCredential({ tenantId: c.tenantId });
  const vaultUrl = c.vaultUrl ?? `https://${c.vaultName}.${c.dnsSuffix ?? cloud.suffix}`;
  // With a vault URL override the host is not *.vault.azure.net; the challenge's resource is still checked by the token request's scope.
  const clientOptions = (maxRetries = RETRIES.maxRetries): Akv.KeyClientOptions => ({
    tlsOptions,
    retryOptions: { ...RETRIES, maxRetries },
    disableChallengeResourceVerification: !!c.vaultUrl,
  });
  return { akv, credential, vaultUrl, clientOptions, keyClient: (maxRetries) => new akv.KeyClient(vaultUrl, credential, clientOptions(maxRetries)) };
}

const CALL_TIMEOUT_MS = 15_000;

/** Options for one Key Vault call: a deadline (the Azure pipeline has none by default), retries included. */
export const azureCallOptions = (): { abortSignal: AbortSignal } => ({ abortSignal: AbortSignal.timeout(CALL_TIMEOUT_MS) });

/**
 * What kind of failure a Key Vault or Azure AD error is. `conflict`: what a 409 means to
 * the caller (an import into a key that exists is bad input; elsewhere it is the service's).
 */
export function azureErrorKind(e: unknown, conflict: KeyErrorKind = 'unavailable'): KeyErrorKind {
  const s = sdkStatusCode(e);
  if (s === 404) return 'not_found';
  // @azure/identity reports a refused secret as AuthenticationError or AuthenticationRequiredError.
  if (s === 401 || s === 403 || /^(Authentication|CredentialUnavailable)/.test(sdkErrorName(e))) return 'denied';
  if (s === 400) return 'invalid';
  if (s === 409) return conflict;
  return 'unavailable';
}

/** Who makes a Key Vault call, for its errors: the key or kms name, the secrets to redact, what a 409 means. */
export interface AzureCaller {
  name: string;
  secrets: readonly string[];
  conflict?: KeyErrorKind;
}

/** Run one Key Vault call with a deadline; a failure becomes a KeyError naming the caller, redacted of its secrets. */
export async function azureCall<T>(who: AzureCaller, op: string, fn: (o: { abortSignal: AbortSignal }) => Promise<T>): Promise<T> {
  try {
    return await fn(azureCallOptions());
  } catch (e) {
    throw keyFailure('azurekeyvault', who.name, op, e, who.secrets, azureErrorKind(e, who.conflict));
  }
}
