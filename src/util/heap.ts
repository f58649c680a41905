// V8 heap settings for a long-lived plugin process.
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/**
 * Keep the young generation at its initial size. Under an allocation burst (a batch, a
 * hundred mounts set up) V8 grows it (Node 20: up to 2 × 16 MiB; Node 24: to 128 MiB in a
 * plain process), and an idle plugin does not get it back: measured, 32 MiB of new space
 * still committed after 40 s idle on Node 20, 128 MiB after 45 s on Node 24. V8 reads the
 * growth factor each time it would grow the new space, so it can be set here at start.
 * A larger cap through the SEA's execArgv (--max-semi-space-size=4) saved 10-20% of a
 * large batch's CPU but cost ~40 KiB per idle mount (bench/RESULTS.md, session 6): not taken.
 */
export function limitYoungGeneration(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}

/** Committed bytes of V8's young generation (new space), for tests and benches. */
export function youngGenerationBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}
