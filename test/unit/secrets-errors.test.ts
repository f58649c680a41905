// Errors by identity: Vault's error types come from the error's class, never its text;
// wrapped errors keep what they wrap as their cause.
import { describe, expect, it } from 'vitest';
import { Router, UnsupportedOperationError, UnsupportedPathError, UserError } from '../../src/secrets/framework';
import { fromPbSecret, toReply } from '../../src/secrets/plugin';
import { parseClientCert } from '../../src/goplugin/autotls';
import { MemoryStorage } from '../../src/storage/storage';

const ERR_CODED = 3,
  ERR_UNSUPPORTED_OPERATION = 5,
  ERR_UNSUPPORTED_PATH = 6;

describe('Vault error types by class', () => {
  it('the router throws the unsupported-path and unsupported-operation classes', async () => {
    const r = new Router([{ pattern: 'only', fields: {}, operations: { read: async () => ({ data: {} }) }, synopsis: '', description: '' }], 'help');
    const ctx = { storage: new MemoryStorage(), displayName: '', mountPoint: '' };
    await expect(r.handle('read', 'other', {}, ctx)).rejects.toBeInstanceOf(UnsupportedPathError);
    await expect(r.handle('delete', 'only', {}, ctx)).rejects.toBeInstanceOf(UnsupportedOperationError);
  });

  it("only those classes become Vault's ErrUnsupportedPath / ErrUnsupportedOperation", () => {
    expect(toReply(undefined, new UnsupportedPathError()).err).toEqual({ err_type: ERR_UNSUPPORTED_PATH, err_msg: 'unsupported path', err_code: 0 });
    expect(toReply(undefined, new UnsupportedOperationError()).err).toEqual({
      err_type: ERR_UNSUPPORTED_OPERATION,
      err_msg: 'unsupported operation',
      err_code: 0,
    });
    // A handler's own 404 or 405 keeps its status and its message, whatever its text.
    expect(toReply(undefined, new UserError('unsupported path', 404)).err).toEqual({ err_type: ERR_CODED, err_msg: 'unsupported path', err_code: 404 });
    expect(toReply(undefined, new UserError('the key is being rotated elsewhere', 405)).err).toEqual({
      err_type: ERR_CODED,
      err_msg: 'the key is being rotated elsewhere',
      err_code: 405,
    });
  });
});

describe('wrapped errors keep their cause', () => {
  it('a bad PLUGIN_CLIENT_CERT', () => {
    let err: Error | undefined;
    try {
      parseClientCert('not a certificate');
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).toMatch(/PLUGIN_CLIENT_CERT is not a valid PEM certificate/);
    expect(err?.cause).toBeInstanceOf(Error);
  });

  it('a leased secret whose internal data is not JSON', () => {
    let err: Error | undefined;
    try {
      fromPbSecret({ internal_data: '{nope' });
    } catch (e) {
      err = e as Error;
    }
    expect(err).toBeInstanceOf(UserError);
    expect(err?.cause).toBeInstanceOf(SyntaxError);
  });
});
