// Summaries of V8 .cpuprofile files (node --cpu-prof): where a process spent its busy time,
// by function (self and inclusive) and by script. Percentages are of busy samples, i.e.
// excluding (idle). Run by hand: npx tsx bench/cpuprofile.ts <file.cpuprofile> [top]
import * as fs from 'node:fs';
import * as path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Row {
  name: string;
  ms: number;
  pct: number;
}
export interface ProfileSummary {
  file: string;
  wallMs: number;
  busyMs: number;
  top: Row[];
  inclusive: Row[];
  byScript: Row[];
}

const META = new Set(['(idle)', '(root)']);

function scriptOf(f: CallFrame): string {
  if (!f.url) return f.functionName.startsWith('(') ? f.functionName : '(native)';
  return f.url.startsWith('node:') ? f.url : path.basename(f.url.replace(/^file:\/\//, ''));
}

function label(f: CallFrame): string {
  const fn = f.functionName || '(anonymous)';
  if (!f.url) return fn;
  // Frames of the bundle keep their names (identifiers are not minified): name + position in it.
  return `${fn} ${scriptOf(f)}:${f.lineNumber + 1}:${f.columnNumber + 1}`;
}

function rank(m: Map<string, number>, total: number, msPerSample: number, n: number): Row[] {
  return [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, count]) => ({ name, ms: count * msPerSample, pct: (100 * count) / total }));
}

export function summarise(file: string, n = 20): ProfileSummary {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const parent = new Map<number, number>();
  for (const x of p.nodes) for (const c of x.children ?? []) parent.set(c, x.id);
  const wallMs = (p.endTime - p.startTime) / 1000;
  const msPerSample = p.samples.length ? wallMs / p.samples.length : 0;
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  const script = new Map<string, number>();
  let busy = 0;
  for (const id of p.samples) {
    const node = byId.get(id)!;
    if (META.has(node.callFrame.functionName) && !node.callFrame.url) continue;
    busy++;
    self.set(label(node.callFrame), (self.get(label(node.callFrame)) ?? 0) + 1);
    script.set(scriptOf(node.callFrame), (script.get(scriptOf(node.callFrame)) ?? 0) + 1);
    // Inclusive: every distinct function on the stack once (recursion counted once).
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      if (!f.url) continue;
      const l = label(f);
      if (!seen.has(l)) {
        seen.add(l);
        incl.set(l, (incl.get(l) ?? 0) + 1);
      }
    }
  }
  return {
    file,
    wallMs,
    busyMs: busy * msPerSample,
    top: rank(self, busy, msPerSample, n),
    inclusive: rank(incl, busy, msPerSample, n),
    byScript: rank(script, busy, msPerSample, n),
  };
}

/** The summary as markdown tables. */
export function summaryMarkdown(s: ProfileSummary): string {
  const table = (title: string, rows: Row[]) =>
    [`| ${title} | ms | % of busy |`, '|---|---:|---:|', ...rows.map((r) => `| \`${r.name}\` | ${r.ms.toFixed(0)} | ${r.pct.toFixed(1)} |`)].join('\n');
  return [
    `profile ${path.basename(s.file)}: ${(s.wallMs / 1000).toFixed(1)} s sampled, ${(s.busyMs / 1000).toFixed(1)} s busy (${((100 * s.busyMs) / s.wallMs).toFixed(0)}% of one core)`,
    '',
    table('self time: function', s.top),
    '',
    table('inclusive time: function', s.inclusive),
    '',
    table('self time: script', s.byScript),
  ].join('\n');
}

if (require.main === module) {
  const [file, n] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: npx tsx bench/cpuprofile.ts <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  process.stdout.write(summaryMarkdown(summarise(file, Number(n ?? 20))) + '\n');
}
