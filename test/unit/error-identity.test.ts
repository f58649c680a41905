// Errors by identity, with causes: code acts on an error's class, kind, SQLSTATE or status,
// never on its message text; a wrapped error is kept as the wrapper's cause (and still never
// shown: messages are redacted, causes are not sent anywhere).
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KeyError } from '../../src/keys';
import { keyFailure, keyInvalid } from '../../src/keys/errors';
import { keyErrorToUser } from '../../src/secrets/managed-keys';
import { UserError } from '../../src/secrets/framework';
import { GrpcError } from '../../src/goplugin/grpc-client';
import { GrpcStorage } from '../../src/storage/storage';

const root = path.resolve(__dirname, '../..');
const sources = (dir: string): string[] =>
  fs
    .readdirSync(path.join(root, dir), { withFileTypes: true })
    .flatMap((d) => (d.isDirectory() ? sources(`${dir}/${d.name}`) : d.name.endsWith('.ts') ? [`${dir}/${d.name}`] : []));

describe('errors by identity', () => {
  it("no code in src matches on an error message's text", () => {
    const onMessage = [
      /\.message\b[^;\n]*\.(includes|match|startsWith|endsWith|search|replace)\(/, // e.message.includes(...)
      /\.test\([^)\n]*\.message\b/, // /re/.test(e.message)
      /\bmessage\.(includes|match|startsWith|endsWith|search)\(/, // a message read into a variable
    ];
    const found = sources('src').flatMap((f) =>
      fs
        .readFileSync(path.join(root, f), 'utf8')
        .split('\n')
        .map((line, i) => ({ where: `${f}:${i + 1}`, line: line.trim() }))
        .filter(({ line }) => onMessage.some((re) => re.test(line))),
    );
    expect(found).toEqual([]);
  });

  it('a KeyError as a Vault error keeps the KeyError as its cause', () => {
    const k = keyInvalid('bad key config');
    const u = keyErrorToUser(k);
    expect(u).toBeInstanceOf(UserError);
    expect((u as UserError).status).toBe(400);
    expect((u as UserError).cause).toBe(k);
    expect(keyErrorToUser(new KeyError('denied', 'no')) as UserError).toMatchObject({ status: 403 });
  });

  it('a backend failure keeps the SDK error as its cause, and its message redacted of the secrets', () => {
    const sdk = Object.assign(new Error('signature for s3cr3t-key-material does not match'), { name: 'InvalidSignatureException' });
    const k = keyFailure('awskms', 'k1', 'sign', sdk, ['s3cr3t-key-material'], 'denied');
    expect(k.cause).toBe(sdk);
    expect(k.origin?.name).toBe('InvalidSignatureException');
    expect(k.message).not.toContain('s3cr3t-key-material');
    expect(k.message).toBe('awskms key "k1": sign failed: signature for [redacted] does not match');
  });

  it("a failed storage call names the method and the gRPC status's details, and keeps the gRPC error as its cause", async () => {
    const failure = new GrpcError(14, "the connection to 127.0.0.1:1 ended before the call's status");
    const storage = new GrpcStorage({ unary: () => Promise.reject(failure) });
    const e = await storage.get('k').catch((x: Error) => x);
    expect(e).toBeInstanceOf(Error);
    expect((e as Error).message).toBe("storage Get: the connection to 127.0.0.1:1 ended before the call's status");
    expect((e as Error).cause).toBe(failure);
  });
});
