// One AWS KMS client setup for the awskms managed keys (src/keys/awskms.ts) and keymgmt's
// AWS provider (src/secrets/keymgmt/providers/awskms.ts): credentials under the operator's
// rules (src/keys/operator.ts), endpoint override, bounded retries and timeouts. Loads the
// SDK: import this only from those lazily loaded modules, never from the main bundle.
import type * as Kms from '@aws-sdk/client-kms';
import { keyInvalid } from '../errors';
import { requireAmbientCredentials } from '../operator';

/** What an AWS KMS client is made from. */
export interface AwsClientConfig {
  /** Who asks, for error messages: the backend type and the key or kms name. */
  backend: string;
  name: string;
  region: string;
  /** Endpoint URL override (VPC endpoints, emulators). */
  endpoint?: string;
  accessKey?: string;
  secretKey?: string;
  sessionToken?: string;
  /** The config field to name when no credentials are given. */
  credentialField: string;
}

/** The SDK module and a maker of clients that share one configuration. */
export interface AwsKms {
  kms: typeof Kms;
  /** A client that makes at most `maxAttempts` attempts per call (the SDK's jittered backoff on throttling and 5xx between them). */
  client(maxAttempts: number): Kms.KMSClient;
}

/**
 * Check the credentials (both halves of a key pair, or ambient credentials the operator
 * allows for this endpoint) and load the SDK.
 */
export function awsKms(c: AwsClientConfig): AwsKms {
  if ((c.accessKey === undefined) !== (c.secretKey === undefined)) throw keyInvalid('access_key and secret_key must be given together');
  if (c.accessKey === undefined) requireAmbientCredentials(c.backend, c.name, c.credentialField, c.endpoint);
  const kms = require('@aws-sdk/client-kms') as typeof Kms;
  const { NodeHttpHandler } = require('@smithy/node-http-handler') as typeof import('@smithy/node-http-handler');
  const credentials =
    c.accessKey !== undefined && c.secretKey !== undefined
      ? { accessKeyId: c.accessKey, secretAccessKey: c.secretKey, sessionToken: c.sessionToken }
      : undefined;
  return {
    kms,
    client: (maxAttempts) =>
      new kms.KMSClient({
        region: c.region,
        endpoint: c.endpoint,
        // Without credentials: the SDK's default chain (allowed by the operator, checked above).
        credentials,
        maxAttempts,
        requestHandler: new NodeHttpHandler({ connectionTimeout: 5000, requestTimeout: 10_000 }),
      }),
  };
}
