// bench/idle: what one idle plugin process holds (#17 goal 1), for builds side by side: each
// executable is launched with Vault's environment in both roles (test/support/host.ts, the
// AutoMTLS handshake), left idle for BENCH_IDLE_MS (3000), and measured from
// /proc/<pid>/smaps_rollup; BENCH_ROUNDS (4) rounds alternate the builds, medians printed.
// Run: npx tsx bench/idle.ts [exe ...] (default: dist's executable)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { launchPlugin } from '../test/support/host';

const EXES = process.argv.length > 2 ? process.argv.slice(2).map((e) => path.resolve(e)) : [path.resolve(__dirname, '..', 'dist', 'vault-plugin-ts')];
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 3000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** MiB: resident, private (clean + dirty) and anonymous. */
function mem(pid: number): number[] {
  const s = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? 0);
  return [kib('Rss'), kib('Private_Clean') + kib('Private_Dirty'), kib('Anonymous')].map((k) => k / 1024);
}

async function main(): Promise<void> {
  const acc = new Map<string, number[][]>();
  for (let r = 0; r < ROUNDS; r++) {
    for (const exe of EXES) {
      for (const role of ['database', 'backend'] as const) {
        const p = await launchPlugin(exe, role);
        try {
          await sleep(IDLE_MS);
          const key = `| ${exe} | ${role === 'backend' ? 'secrets' : role} |`;
          acc.set(key, [...(acc.get(key) ?? []), mem(p.proc.pid!)]);
        } finally {
          await p.kill();
        }
      }
    }
  }
  console.log(`# bench/idle ${new Date().toISOString().slice(0, 16)}Z: ${ROUNDS} rounds, ${IDLE_MS} ms idle after the handshake, medians`);
  console.log('| executable | role | RSS MiB | private MiB | anonymous MiB |');
  console.log('|---|---|---:|---:|---:|');
  for (const [key, v] of acc) {
    const med = (i: number) =>
      v
        .map((x) => x[i])
        .sort((a, b) => a - b)
        [Math.floor(v.length / 2)].toFixed(1);
    console.log(`${key} ${med(0)} | ${med(1)} | ${med(2)} |`);
  }
}

void main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
