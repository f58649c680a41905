// Defects found in review 13 (transit key store, managed keys), each shown by a test that
// failed before its fix.
import { describe, expect, it } from 'vitest';
import { MemoryStorage } from '../../src/storage/storage';
import { backendMount } from '../support/backend';

/** A storage whose next read of `key` takes its value at once but answers only when released (a read in flight over the broker). */
class SlowReads extends MemoryStorage {
  private held?: { key: string; release?: () => void };
  holdNextGet(key: string): () => void {
    this.held = { key };
    return () => this.held?.release?.();
  }
  override async get(key: string) {
    const value = await super.get(key);
    if (this.held?.key === key && !this.held.release) {
      const held = this.held;
      await new Promise<void>((r) => {
        held.release = r;
      });
      this.held = undefined;
    }
    return value;
  }
}

describe('transit key cache: a read in flight never caches a key older than a write or invalidation made meanwhile', () => {
  it('rotate while an encrypt is still reading the key: later requests see the rotation', async () => {
    const store = new SlowReads();
    const { be, ok } = backendMount('transit', store);
    await ok('update', 'keys/k', {});
    be.invalidate('policy/k');
    const release = store.holdNextGet('policy/k');
    // This encrypt reads version 1 of the key, then waits.
    const first = ok('update', 'encrypt/k', { plaintext: 'aGk=' });
    await new Promise((r) => setImmediate(r));
    // The rotation completes (stored, cached) while that read is in flight.
    expect((await ok('update', 'keys/k/rotate', {})).latest_version).toBe(2);
    release();
    expect((await first).key_version).toBe(1);
    // Every request from now on was made after the rotation.
    expect((await ok('read', 'keys/k')).latest_version).toBe(2);
    expect((await ok('update', 'encrypt/k', { plaintext: 'aGk=' })).key_version).toBe(2);
  });

  it("Vault's InvalidateKey during a read in flight is not lost", async () => {
    const store = new SlowReads();
    const { be, ok } = backendMount('transit', store);
    await ok('update', 'keys/k', {});
    be.invalidate('policy/k');
    const release = store.holdNextGet('policy/k');
    const first = ok('read', 'keys/k');
    await new Promise((r) => setImmediate(r));
    // Another node (performance standby, replication) rotated the key and Vault says so.
    const stored = JSON.parse(store.data.get('policy/k')!.toString());
    stored.versions['2'] = stored.versions['1'];
    stored.latest_version = 2;
    store.data.set('policy/k', Buffer.from(JSON.stringify(stored)));
    be.invalidate('policy/k');
    release();
    expect((await first).latest_version).toBe(1);
    expect((await ok('read', 'keys/k')).latest_version).toBe(2);
  });
});
