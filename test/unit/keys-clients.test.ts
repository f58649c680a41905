// One client setup per cloud, shared by managed keys and keymgmt's providers: the
// operator's credential rules are enforced in it, and errors keep the SDK error's identity.
import { afterEach, describe, expect, it } from 'vitest';
import { awsKms } from '../../src/keys/clients/aws';
import { gcpKms } from '../../src/keys/clients/gcp';
import { azureErrorKind, azureKeyVault } from '../../src/keys/clients/azure';
import { KeyError, keyFailure, sdkErrorCode, sdkErrorName, sdkStatusCode } from '../../src/keys/errors';

const AMBIENT = ['VAULT_PLUGIN_AMBIENT_CREDENTIALS', 'BAO_PLUGIN_AMBIENT_CREDENTIALS', 'VAULT_PLUGIN_AMBIENT_ENDPOINTS', 'BAO_PLUGIN_AMBIENT_ENDPOINTS'];
const saved = Object.fromEntries(AMBIENT.map((k) => [k, process.env[k]]));
afterEach(() => {
  for (const k of AMBIENT) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});
const noAmbient = () => {
  for (const k of AMBIENT) delete process.env[k];
};

describe('cloud client setup', () => {
  it('AWS: a key pair is given whole, and without one the operator must allow ambient credentials for that endpoint', () => {
    noAmbient();
    const who = { backend: 'awskms', name: 'k', credentialField: 'access_key/secret_key', region: 'us-east-1' };
    expect(() => awsKms({ ...who, accessKey: 'AKIA' })).toThrow(/given together/);
    expect(() => awsKms(who)).toThrow(/VAULT_PLUGIN_AMBIENT_CREDENTIALS=true/);
    process.env.VAULT_PLUGIN_AMBIENT_CREDENTIALS = 'true';
    expect(() => awsKms({ ...who, endpoint: 'https://kms.example' })).toThrow(/PLUGIN_AMBIENT_ENDPOINTS/);
    const made = awsKms({ ...who, accessKey: 'AKIA', secretKey: 's', endpoint: 'https://kms.example' });
    const client = made.client(1);
    expect(client).toBeInstanceOf(made.kms.KMSClient);
    client.destroy();
  });

  it('Google: without a service account the operator must allow application default credentials', async () => {
    noAmbient();
    expect(() => gcpKms({ backend: 'gcpckms', name: 'k', credentialField: 'credentials' })).toThrow(/gcpckms key "k": no credentials configured/);
    process.env.VAULT_PLUGIN_AMBIENT_CREDENTIALS = 'true';
    const { client, callOptions } = gcpKms({ backend: 'gcpckms', name: 'k', credentialField: 'credentials' });
    expect(callOptions('idempotent')).toMatchObject({ timeout: 10_000 });
    await client.close();
  });

  it("Azure: the cloud is checked, and a missing client secret needs the operator's leave for every override", () => {
    noAmbient();
    const who = { backend: 'azurekeyvault', name: 'k', credentialField: 'client_secret', vaultName: 'v' };
    expect(() => azureKeyVault({ ...who, clientSecret: 's', environment: 'mars' })).toThrow(/environment must be one of/);
    expect(() => azureKeyVault(who)).toThrow(/VAULT_PLUGIN_AMBIENT_CREDENTIALS=true/);
    process.env.VAULT_PLUGIN_AMBIENT_CREDENTIALS = 'true';
    expect(() => azureKeyVault({ ...who, authorityHost: 'https://login.example' })).toThrow(/PLUGIN_AMBIENT_ENDPOINTS/);
    const v = azureKeyVault({ ...who, tenantId: 't', clientId: 'c', clientSecret: 's', environment: 'AzureChinaCloud' });
    expect(v.vaultUrl).toBe('https://v.vault.azure.cn');
    expect(v.clientOptions(0)).toMatchObject({ retryOptions: { maxRetries: 0 }, disableChallengeResourceVerification: false });
  });

  it('a wrapped SDK error keeps its name, code and status (not its secrets) for the caller to test', () => {
    const sdk = Object.assign(new Error('denied for secret-123'), { name: 'AccessDeniedException', code: 7, statusCode: 409 });
    const e = keyFailure('awskms', 'k', 'sign', sdk, ['secret-123'], 'denied');
    expect(e).toBeInstanceOf(KeyError);
    expect(e.message).not.toContain('secret-123');
    expect(e.message).toBe('awskms key "k": sign failed: denied for [redacted]'); // the SDK's words, but the secret
    expect([sdkErrorName(e), sdkErrorCode(e), sdkStatusCode(e)]).toEqual(['AccessDeniedException', 7, 409]);
    expect([sdkErrorName(sdk), sdkErrorCode(sdk), sdkStatusCode(sdk)]).toEqual(['AccessDeniedException', 7, 409]);
    expect([sdkErrorName('x'), sdkErrorCode(null), sdkStatusCode({ statusCode: '404' })]).toEqual(['', undefined, undefined]);
    expect(azureErrorKind(e)).toBe('unavailable');
    expect(azureErrorKind(e, 'invalid')).toBe('invalid');
    expect(azureErrorKind({ statusCode: 404 })).toBe('not_found');
    expect(azureErrorKind({ name: 'AuthenticationError' })).toBe('denied');
  });
});
