// V8 heap settings for a long-lived plugin process.
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/**
 * Keep the young generation at its initial size. Under an allocation burst (a batch, a
 * hundred mounts set up) V8 doubles it up to 2 × 16 MiB, and an idle plugin never gets it
 * back: measured, 32 MiB of new space still committed after 40 s idle, which was ~120 KiB
 * "per mount" in bench/multiplex.ts. Node 20's single executable takes no V8 options
 * (`--max-semi-space-size` is read only when the heap is created), but V8 reads the
 * growth factor each time it would grow the new space, so it can be set here at start.
 * Throughput of a 5000-item encrypt batch and of PKI issue did not measurably change
 * (bench/RESULTS.md, cost per mount).
 */
export function limitYoungGeneration(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}

/** Committed bytes of V8's young generation (new space), for tests and benches. */
export function youngGenerationBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}
