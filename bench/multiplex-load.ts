// bench/multiplex-load: the heavy load of bench/multiplex.ts's isolation cells, run in a
// process of its own (forked by bench/multiplex.ts) so that building, encoding and parsing
// 5000-item requests and replies does not share an event loop with the probe that times the
// trivial call: the probe should measure the plugin, not the bench.
//
// Protocol over the fork's IPC channel: the parent sends one LoadSpec; the child connects to
// the plugin over its own mTLS channel (the same host identity), starts `clients` closed
// loops of the one request, and answers { ready: true } after the first reply; on 'stop' it
// lets the calls in flight finish and answers a LoadResult, then exits. On 'mark' it answers
// { mark: LoadResult } with the counts so far (bench/pool-host.ts times a window between marks).
import type * as grpc from '@grpc/grpc-js';
import { call, connectPlugin } from '../test/support/host';

/** What the child runs: one Backend HandleRequest, repeated from `clients` loops. */
export interface LoadSpec {
  handshake: string;
  identity: { certPem: string; keyPem: string };
  md: Record<string, string>;
  clients: number;
  request: { operation: string; path: string; data: object };
  /** What every reply's data must start with (default: a batch's '{"batch_results":['). */
  expect?: string;
}

/** What the child did between its start and 'stop'. */
export interface LoadResult {
  done: number;
  errors: number;
  firstError?: string;
}

type Reply = { response?: { data?: string }; err?: { err_msg: string } };

async function run(spec: LoadSpec): Promise<void> {
  const conn = connectPlugin(spec.handshake, spec.identity);
  const backend = conn.client<grpc.Client>('pb.Backend');
  // Encoded once: the load is the plugin's work, not ours.
  const req = { request: { ...spec.request, data: JSON.stringify(spec.request.data) } };
  const out: LoadResult = { done: 0, errors: 0 };
  const expect = spec.expect ?? '{"batch_results":[';
  let stop = false;
  let ready = false;
  process.on('message', (m) => {
    if (m === 'stop') stop = true;
    if (m === 'mark') process.send!({ mark: { ...out } });
  });
  const one = async () => {
    const r = await call<Reply>(backend, 'HandleRequest', req, spec.md);
    if (r.err?.err_msg) throw new Error(r.err.err_msg);
    // A batch's answer is checked by its size and first bytes, not parsed: parsing 5000
    // results would only cost this process CPU that the plugin's host shares.
    const d = r.response?.data ?? '';
    if (!d.startsWith(expect)) throw new Error(`unexpected reply: ${d.slice(0, 120)}`);
  };
  await Promise.all(
    Array.from({ length: spec.clients }, async () => {
      while (!stop) {
        try {
          await one();
          out.done++;
        } catch (e) {
          out.errors++;
          out.firstError ??= (e as Error).message.slice(0, 200);
        }
        if (!ready) {
          ready = true;
          process.send!({ ready: true });
        }
      }
    }),
  );
  process.send!({ result: out }, () => {
    conn.close();
    process.exit(0);
  });
}

process.once('message', (m) => void run(m as LoadSpec));
