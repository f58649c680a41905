// The plugin keeps V8's young generation from growing under allocation bursts (src/util/heap.ts).
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

/** New-space MiB after a burst of short-lived allocations, in a fresh node process. */
function youngAfterBurst(limit: boolean): number {
  const heap = path.resolve(__dirname, '../../src/util/heap.ts');
  const code = `
    const h = require(${JSON.stringify(heap)});
    if (${limit}) h.limitYoungGeneration();
    let keep = [];
    for (let i = 0; i < 2e6; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 20000) keep = []; }
    process.stdout.write(String(h.youngGenerationBytes() / 1048576));`;
  return Number(execFileSync(process.execPath, ['--import', 'tsx', '-e', code], { encoding: 'utf8' }));
}

describe('young generation', () => {
  it('stays at its initial size through an allocation burst once limited', () => {
    expect(youngAfterBurst(false)).toBeGreaterThanOrEqual(16); // V8's default: it grows
    expect(youngAfterBurst(true)).toBeLessThanOrEqual(4);
  });
});
