// Closed-loop load for benches: N clients, each issuing its next request as soon as the
// previous one answers, for a bounded time; and a keep-alive HTTP client for Vault's API.
// Only successful requests count toward the rate; failures are counted and the first
// message kept, so a cell that fails is visible instead of looking fast.
import * as http from 'node:http';

export interface CellResult {
  clients: number;
  ok: number;
  errors: number;
  seconds: number;
  /** Successful requests per second. */
  rate: number;
  p50: number;
  p99: number;
  firstError?: string;
}

/** Run `op` from `clients` concurrent loops for `ms`; requests in flight at the end are awaited and counted. */
export async function drive(clients: number, ms: number, op: () => Promise<void>): Promise<CellResult> {
  const lat: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const end = Date.now() + ms;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < end) {
        const s = process.hrtime.bigint();
        try {
          await op();
          lat.push(Number(process.hrtime.bigint() - s) / 1e6);
        } catch (e) {
          errors++;
          firstError ??= (e as Error).message;
        }
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  lat.sort((a, b) => a - b);
  const q = (p: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : NaN);
  return { clients, ok: lat.length, errors, seconds, rate: lat.length / seconds, p50: q(0.5), p99: q(0.99), firstError };
}

export interface HttpAnswer {
  status: number;
  body: Buffer;
}

/** Vault's HTTP API over keep-alive connections (one socket per client at most). */
export class VaultHttp {
  private readonly agent: http.Agent;
  private readonly url: URL;

  constructor(
    addr: string,
    private readonly token: string,
    sockets: number,
  ) {
    this.url = new URL(addr);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  }

  request(method: string, p: string, body?: Buffer, timeoutMs = 60_000): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: this.url.hostname,
          port: this.url.port,
          method,
          path: `/v1/${p}`,
          agent: this.agent,
          headers: { 'X-Vault-Token': this.token, ...(body ? { 'Content-Type': 'application/json', 'Content-Length': body.length } : {}) },
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${p}: no answer in ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** One request that must answer 2xx; otherwise throws with Vault's error text. */
  async ok(method: string, p: string, body?: Buffer): Promise<Buffer> {
    const r = await this.request(method, p, body);
    if (r.status < 200 || r.status > 299) throw new Error(`${method} ${p}: ${r.status} ${r.body.toString('utf8').slice(0, 300)}`);
    return r.body;
  }

  close(): void {
    this.agent.destroy();
  }
}
