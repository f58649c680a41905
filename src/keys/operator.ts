// What a managed-key config may make this process do beyond talking to its backend is set
// by the operator at plugin registration, outside the API (as Vault Enterprise does with
// its server-config kms_library): anyone who can write one mount's managed-keys path must
// not be able to load a module (code execution as Vault's user), read a file, or borrow the
// host's cloud identity. Unset settings allow nothing.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { operatorSetting } from '../goplugin/env';
import { MAX_OPERATOR_FILE_BYTES, operatorAllows, readBoundedFile } from '../util/files';
import { keyInvalid } from './errors';

/** Operator setting: the PKCS#11 modules this plugin may load (paths, comma-separated). */
export const PKCS11_LIBRARIES = 'PLUGIN_PKCS11_LIBRARIES';
/** Operator setting: the credential files a config may name. */
export const CREDENTIAL_FILES = 'PLUGIN_CREDENTIAL_FILES';
/** Operator setting: `true` lets configs without credentials use the SDKs' default credential chains. */
export const AMBIENT_CREDENTIALS = 'PLUGIN_AMBIENT_CREDENTIALS';
/** Operator setting: endpoints ambient credentials may be sent to (comma-separated). */
export const AMBIENT_ENDPOINTS = 'PLUGIN_AMBIENT_ENDPOINTS';

const envName = (setting: string) => `VAULT_${setting}`;

/**
 * The resolved path of `p` if the operator's list `setting` allows it, else undefined.
 * Resolved once here and the result checked, so the caller uses exactly the file that was
 * checked: a symlink re-pointed after the check cannot redirect it.
 */
function resolveAllowed(setting: string, p: string): string | undefined {
  if (typeof p !== 'string' || !path.isAbsolute(p) || p.includes('\0')) return undefined;
  let real: string;
  try {
    real = fs.realpathSync(p);
  } catch {
    return undefined; // missing: refused like any path off the list, so the answer says nothing about it
  }
  return operatorAllows(real, operatorSetting(setting)) ? real : undefined;
}

function isRegularFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * A PKCS#11 module path checked against PLUGIN_PKCS11_LIBRARIES: the resolved path to
 * load, or a clear error naming the setting. Called before every load.
 */
export function allowedPkcs11Library(library: string): string {
  if (!operatorSetting(PKCS11_LIBRARIES)) {
    throw keyInvalid(
      `no PKCS#11 module may be loaded: the operator has not set ${envName(PKCS11_LIBRARIES)} (the plugin's environment at registration lists the modules it may load)`,
    );
  }
  const real = resolveAllowed(PKCS11_LIBRARIES, library);
  // Only a regular file goes to dlopen: a FIFO or device would block or feed it endless data.
  if (!real || !isRegularFile(real))
    throw keyInvalid(
      `library "${String(library).slice(0, 200)}" is not allowed by the operator setting ${PKCS11_LIBRARIES} (${envName(PKCS11_LIBRARIES)} at plugin registration lists the modules this plugin may load)`,
    );
  return real;
}

/**
 * Read a credential file named in a config (`what` is the field). Allowed only by
 * PLUGIN_CREDENTIAL_FILES, read without blocking (regular file, size cap). Every refusal
 * of a path is one message that neither echoes the value (it may be a mistyped secret)
 * nor says whether the path exists.
 */
export async function readCredentialFile(what: string, p: string): Promise<Buffer> {
  if (!operatorSetting(CREDENTIAL_FILES)) {
    throw keyInvalid(
      `${what}: give the service-account JSON itself; credential files cannot be read because the operator has not set ${envName(CREDENTIAL_FILES)}`,
    );
  }
  const refusal = `${what}: not a credential file this plugin may read (allowed by the operator setting ${CREDENTIAL_FILES}; a regular file of at most ${MAX_OPERATOR_FILE_BYTES} bytes)`;
  const real = resolveAllowed(CREDENTIAL_FILES, p);
  if (!real) throw keyInvalid(refusal);
  try {
    return await readBoundedFile(real, what);
  } catch (e) {
    throw keyInvalid(refusal, e);
  }
}

/** Has the operator allowed the SDKs' default credential chains (PLUGIN_AMBIENT_CREDENTIALS=true)? */
export const ambientCredentialsAllowed = (): boolean => operatorSetting(AMBIENT_CREDENTIALS) === 'true';

/**
 * A cloud backend configured without credentials would use its SDK's default chain
 * (environment variables, instance metadata, workload identity): the host's identity, not
 * one the config supplied. Only when the operator set PLUGIN_AMBIENT_CREDENTIALS=true, and
 * (for a configured `endpoint`) listed that endpoint; else an `invalid` KeyError.
 */
export function requireAmbientCredentials(backend: string, name: string, missing: string, endpoint?: unknown): void {
  if (!ambientCredentialsAllowed()) {
    throw keyInvalid(
      `${backend} key "${name}": no ${missing} configured, and the SDK's ambient credentials (environment, instance metadata, workload identity) may only be used when the operator sets ${envName(AMBIENT_CREDENTIALS)}=true`,
    );
  }
  if (endpoint !== undefined && endpoint !== '' && !ambientEndpointAllowed(String(endpoint)))
    throw keyInvalid(ambientEndpointRefusal(`${backend} key "${name}"`));
}

/**
 * Ambient credentials sign or carry the host's own cloud identity, so they never go to an
 * endpoint a config names (anyone who can write the config could run that server) unless
 * the operator lists that exact endpoint in PLUGIN_AMBIENT_ENDPOINTS (e.g. a VPC endpoint).
 */
export function ambientEndpointAllowed(endpoint: string): boolean {
  const list = operatorSetting(AMBIENT_ENDPOINTS);
  return (
    !!list &&
    list
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean)
      .includes(endpoint.trim())
  );
}

/** The message refusing ambient credentials for a configured endpoint; `what` names the key or kms. */
export function ambientEndpointRefusal(what: string): string {
  return `${what}: ambient credentials are not sent to a configured endpoint unless the operator lists that endpoint in ${envName(AMBIENT_ENDPOINTS)} (the host's cloud identity would go to whoever runs it); give explicit credentials instead`;
}
