// Issue 17 item 2 (per configuration, multiplexed): Initialize/Close cycles leave nothing
// behind, and an idle configuration costs little. No server here: verify_connection=false,
// and calls to an unreachable port (test/integration/database-lifecycle.test.ts has the
// same with a real PostgreSQL).
import { describe, expect, it } from 'vitest';
import { Instances } from '../../src/database/instances';
import { quietLog } from '../support/db';
import { gc, settledHeap, trackLiveResources } from '../support/live-resources';

const config = (i: number) => ({
  connection_url: `postgres://{{username}}:{{password}}@127.0.0.1:1/app_${i}?sslmode=disable`,
  username: 'vault',
  password: `Pw-${i}-secret`,
  max_open_connections: 4,
  connect_timeout: '2s',
});

describe('database instances: lifecycle cost', () => {
  it('10,000 Initialize/Close cycles (every 100th with a failing call) leave no handles, timers, instances or heap behind', async () => {
    const collect = gc();
    const inst = new Instances(quietLog());
    const cycle = async (i: number) => {
      await inst.initialize(`m${i % 7}`, { config: config(i), verifyConnection: false });
      if (i % 100 === 0) {
        await expect(
          inst.get(`m${i % 7}`).newUser({ displayName: 'd', roleName: 'r', password: 'p', statements: ['CREATE ROLE "{{name}}"'], credentialType: 0 }),
        ).rejects.toThrow(/cannot connect/);
      }
      await inst.close(`m${i % 7}`);
    };
    for (let i = 0; i < 3000; i++) await cycle(i); // warm up: lexer, modules, JIT, error paths
    const heapBefore = await settledHeap(collect);
    for (let i = 0; i < 10_000; i++) await cycle(i);
    const heapAfter = await settledHeap(collect);
    // Then resources, on cycles of their own (the tracking map would weigh on the heap).
    const live = trackLiveResources();
    for (let i = 0; i < 2_000; i++) await cycle(i);
    await new Promise((r) => setTimeout(r, 50));
    await settledHeap(collect);
    const left = live.counts();
    live.stop();
    expect(inst.size).toBe(0);
    // Sockets, timers (unref'd ones too) and other resources created during the cycles and still alive.
    expect(left.TCPWRAP ?? 0).toBe(0);
    expect(left.Timeout ?? 0).toBe(0);
    // Anything else alive but settledHeap's own setImmediate; promises not yet collected stay far below one per cycle.
    const { PROMISE = 0, Immediate = 0, ...others } = left;
    expect(others).toEqual({});
    expect(Immediate).toBeLessThanOrEqual(1);
    expect(PROMISE).toBeLessThan(500);
    // Keeping as little as one parsed configuration (~5 KiB) per cycle would be 50 MB; GC noise stays under 2 MB.
    expect(heapAfter - heapBefore).toBeLessThan(2_000_000);
  });

  it('1,000 idle configurations: memory per configuration (recorded), all freed by closing them', async () => {
    const collect = gc();
    const inst = new Instances(quietLog());
    await inst.initialize('warm', { config: config(0), verifyConnection: false });
    await inst.close('warm');
    const base = await settledHeap(collect);
    for (let i = 0; i < 1000; i++) await inst.initialize(`cfg-${i}`, { config: config(i), verifyConnection: false });
    const loaded = await settledHeap(collect);
    const perConfig = (loaded - base) / 1000;
    console.log(`memory per idle database configuration: ${(perConfig / 1024).toFixed(1)} KiB (heap, 1,000 configurations)`);
    expect(inst.size).toBe(1000);
    expect(perConfig).toBeLessThan(100 * 1024); // issue 17's goal: ≤ 100 KiB
    await inst.closeAll();
    const after = await settledHeap(collect);
    expect(after - base).toBeLessThan(500_000);
  });
});
