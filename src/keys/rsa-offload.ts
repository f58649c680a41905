// Raw RSA private-key operations off the event loop. Node runs crypto.sign and
// generateKeyPair on libuv's thread pool when given a callback, but privateEncrypt and
// privateDecrypt (a digest signed as-is, RSA-OAEP decryption) only run on the calling
// thread: an RSA-4096 operation there stalls every mount of the process for milliseconds,
// a burst of them for seconds. These run on the process's worker threads (util/workers).
import type { KeyObject } from 'node:crypto';
import { workerTask } from '../util/workers';

/** 'sign-raw': privateEncrypt of a prepared block; 'decrypt': privateDecrypt. */
export type RsaPrivateOp = 'sign-raw' | 'decrypt';

interface RsaArgs {
  op: RsaPrivateOp;
  key: KeyObject;
  padding: number;
  oaepHash?: string;
  data: Buffer;
}

const rsaTask = workerTask<RsaArgs, Uint8Array>(
  'rsa-private',
  `({ op, key, padding, oaepHash, data }) => {
  const crypto = require('node:crypto');
  const input = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return op === 'decrypt' ? crypto.privateDecrypt({ key, padding, oaepHash }, input) : crypto.privateEncrypt({ key, padding }, input);
}`,
);

/**
 * privateEncrypt ('sign-raw': the block is already padded or a DigestInfo) or
 * privateDecrypt, with the same options and results as Node's synchronous functions.
 */
export async function rsaPrivate(op: RsaPrivateOp, key: KeyObject, padding: number, data: Buffer, oaepHash?: string): Promise<Buffer> {
  const out = await rsaTask.run({ op, key, padding, oaepHash, data });
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}
