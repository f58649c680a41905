// One Cloud KMS client setup for the gcpckms managed keys (src/keys/gcpckms.ts) and
// keymgmt's Google provider (src/secrets/keymgmt/providers/gcpckms.ts): a service-account
// key signing its own JWTs (no token endpoint is contacted), or application default
// credentials where the operator allows them (src/keys/operator.ts); endpoint and CA
// overrides; bounded retries and a deadline per call. Loads the SDK: import this only from
// those lazily loaded modules, never from the main bundle.
import type * as Gcp from '@google-cloud/kms';
import type { GoogleAuth, JWT } from 'google-auth-library';
import { requireAmbientCredentials } from '../operator';
import type { ServiceAccount } from './gcp-credentials';

export type { ServiceAccount } from './gcp-credentials';

/** What a Cloud KMS client is made from. */
export interface GcpClientConfig {
  /** Who asks, for error messages: the backend type and the key or kms name. */
  backend: string;
  name: string;
  /** undefined: application default credentials (only if the operator allows them). */
  serviceAccount?: ServiceAccount;
  /** The config field to name when no service account is given. */
  credentialField: string;
  projectId?: string;
  /** API endpoint host[:port] override (private endpoints, emulators). */
  endpoint?: string;
  /** PEM of the CA behind `endpoint` (default: system roots). */
  endpointCa?: string;
}

/** Per-call options: which retries a call may make. */
export type GcpRetry = 'idempotent' | 'once';

/** A client and the per-call options to pass with each request. */
export interface GcpKms {
  client: Gcp.KeyManagementServiceClient;
  /**
   * 'idempotent': retried (4 attempts, backoff) on UNAVAILABLE and RESOURCE_EXHAUSTED;
   * 'once': retried only on RESOURCE_EXHAUSTED, when the service said it did nothing.
   * Both with a 10 s deadline.
   */
  callOptions(retry: GcpRetry): object;
}

const SCOPES = ['https://www.googleapis.com/auth/cloudkms'];

/** Check the credentials against the operator's rules, load the SDK and make a client. */
export function gcpKms(c: GcpClientConfig): GcpKms {
  if (!c.serviceAccount) requireAmbientCredentials(c.backend, c.name, c.credentialField, c.endpoint);
  const kms = require('@google-cloud/kms') as typeof Gcp;
  const gax = require('google-gax') as typeof import('google-gax');
  const auth = authClient(c.serviceAccount);
  const opts: Record<string, unknown> = { authClient: auth };
  if (c.projectId !== undefined) opts.projectId = c.projectId;
  if (c.endpoint) {
    const [host, port] = c.endpoint.split(':');
    opts.apiEndpoint = host;
    opts.port = port ? Number(port) : 443;
  }
  if (c.endpointCa) opts.sslCreds = channelWithCa(c.endpointCa, auth);
  const client = new kms.KeyManagementServiceClient(opts as never);
  const backoff = gax.createMaxRetriesBackoffSettings(100, 2, 1000, 10_000, 1, 10_000, 4); // gax counts the first attempt: 4 = first try + 3 retries
  const retryOn = { idempotent: [gax.Status.UNAVAILABLE, gax.Status.RESOURCE_EXHAUSTED], once: [gax.Status.RESOURCE_EXHAUSTED] };
  return { client, callOptions: (retry) => ({ timeout: 10_000, retry: gax.createRetryOptions(retryOn[retry], backoff) }) };
}

function authClient(sa: ServiceAccount | undefined): JWT | GoogleAuth {
  const { JWT, GoogleAuth } = require('google-auth-library') as typeof import('google-auth-library');
  if (!sa) return new GoogleAuth({ scopes: SCOPES }); // application default credentials
  const jwt = new JWT({ email: sa.client_email, key: sa.private_key, scopes: SCOPES });
  jwt.useJWTAccessWithScope = true; // self-signed JWT: no call to a token endpoint
  jwt.defaultServicePath = 'cloudkms.googleapis.com';
  return jwt;
}

/** gax takes a custom CA only as complete channel credentials; the per-call auth is kept in them. */
function channelWithCa(ca: string, auth: JWT | GoogleAuth): unknown {
  const grpc = require('@grpc/grpc-js') as typeof import('@grpc/grpc-js');
  return grpc.credentials.combineChannelCredentials(
    grpc.credentials.createSsl(Buffer.from(ca)),
    grpc.credentials.createFromGoogleCredential({
      getRequestHeaders: async (url?: string) => headerRecord(await auth.getRequestHeaders(url)),
    } as never),
  );
}

/** google-auth-library returns a Headers object (newer versions) or a plain record (older ones). */
function headerRecord(h: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof h !== 'object' || h === null) return out;
  // By shape: the Headers class may come from a fetch polyfill rather than Node's global.
  if ('forEach' in h && typeof h.forEach === 'function')
    h.forEach((v: string, k: string) => {
      out[k] = v;
    });
  else for (const [k, v] of Object.entries(h)) if (typeof v === 'string') out[k] = v;
  return out;
}
