// CPU time of processes from /proc/<pid>/stat (utime + stime), to report CPU per request:
// on a shared, saturated machine a rate moves with everyone else's load, CPU per request much less.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';

let tickMs: number | undefined;
function msPerTick(): number {
  if (tickMs === undefined) {
    let hz = 100;
    try {
      hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      /* Linux default */
    }
    tickMs = 1000 / hz;
  }
  return tickMs;
}

/** CPU milliseconds used so far by each pid that still exists. */
export function cpuSnapshot(pids: number[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after "(comm)": state is the 3rd field overall; utime and stime are the 14th and 15th.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(pid, (Number(f[11]) + Number(f[12])) * msPerTick());
    } catch {
      /* exited */
    }
  }
  return out;
}

/** CPU milliseconds spent between two snapshots by the pids present in both. */
export function cpuSpent(before: Map<number, number>, after: Map<number, number>): number {
  let ms = 0;
  for (const [pid, a] of after) {
    const b = before.get(pid);
    if (b !== undefined) ms += a - b;
  }
  return ms;
}
