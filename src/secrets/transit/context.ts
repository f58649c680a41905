// What every transit path needs: the mount's policies and a way to reach a managed key.
import type { ManagedKeys } from '../managed-keys';
import type { ManagedKey } from '../../keys/types';
import { UserError, coerce, type FieldData, type Request } from '../framework';
import type { Policies } from './store';
import type { Policy } from './policy';
import { cpuPoolSize } from '../../util/workers';
import { nextTurn } from '../../util/slices';

/** What every transit path needs: the mount's key store, and the managed key behind a managed_key policy. */
export interface Transit {
  policies: Policies;
  managedFor(p: Policy): (() => Promise<ManagedKey>) | undefined;
}

/** Binds a mount's key store and managed keys into a Transit. */
export function transitContext(policies: Policies, managedKeys: ManagedKeys): Transit {
  return {
    policies,
    managedFor: (p) => (p.type === 'managed_key' ? () => managedKeys.byName(p.managed_key_name!) : undefined),
  };
}

// A batch runs at most this many items at once: enough to keep every thread of the CPU pool
// busy (RSA signatures go to the worker threads up to 8 per message, see signature.ts; one
// batch alone is as quick with 8 per thread as with 16), few enough that other requests' work
// is never queued behind a whole batch. Each item waiting on the pool holds a few KiB of
// young objects (its async frames, arguments, promises): with 16 per thread, eight RSA
// batches at once kept ~1 MiB alive at every scavenge of the 1 MiB young generation
// (scripts/build.mjs), and the event loop spent twice the time per batch.
const BATCH_CONCURRENCY = 8 * cpuPoolSize();
/** The most items one batch_input may hold; more is a 400. */
export const MAX_BATCH_ITEMS = 10_000;

type Item = { get(k: string): unknown };
/** One item's answer: its fields, or its error. */
type ItemResult = Record<string, unknown>;

/**
 * Run one item, or each of batch_input (per-item errors; see the end for the status).
 * Batch items are validated by the path's own field declarations, like top-level fields.
 */
export async function batch(req: Request, one: (d: Item) => ItemResult | Promise<ItemResult>): Promise<{ data: Record<string, unknown> }> {
  const top = req.data;
  const fields = req.fields ?? {};
  if (!top.has('batch_input')) return { data: await one({ get: (k) => top.get(k) }) };
  const items = top.get<unknown[]>('batch_input');
  if (!Array.isArray(items) || items.length === 0) throw new UserError('batch_input must be a non-empty list');
  if (items.length > MAX_BATCH_ITEMS) throw new UserError(`batch_input holds more than ${MAX_BATCH_ITEMS} items`);
  // An item's failure that is the caller's (a UserError) is that item's answer; anything else fails the request.
  const itemError = (e: unknown, ref: object): ItemResult => {
    if (e instanceof UserError) return { error: e.message, ...ref };
    throw e;
  };
  // Synchronous when the item's work is (keys held here): no promise per item.
  const runItem = (raw: unknown): ItemResult | Promise<ItemResult> => {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return { error: 'each batch_input item must be an object' };
    const item = raw as Record<string, unknown>;
    const ref = item.reference !== undefined ? { reference: item.reference } : {};
    try {
      const given: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(item)) if (fields[k] && k !== 'batch_input' && v !== undefined && v !== null) given[k] = coerce(k, fields[k], v);
      const out = one({ get: (k) => (k in given ? given[k] : top.get(k)) });
      if (out instanceof Promise)
        return out.then(
          (r) => ({ ...r, ...ref }),
          (e) => itemError(e, ref),
        );
      return { ...out, ...ref };
    } catch (e) {
      return itemError(e, ref);
    }
  };
  const results: ItemResult[] = new Array(items.length);
  let next = 0;
  // Synchronous per-item work (AES, HMAC, coercing the item) runs in the process's shared
  // slices (util/slices): all batches together hold the event loop for about one slice per
  // turn, so other mounts' requests are answered in between. The turn is taken before an
  // item, whose synchronous part then runs at once: however many items are in flight, at
  // most one starts after the slice is spent.
  const worker = async () => {
    while (next < items.length) {
      // Asked again after waiting: the runs resumed together share the new slice.
      for (let turn = nextTurn(); turn; turn = nextTurn()) await turn;
      if (next >= items.length) break;
      const i = next++;
      const r = runItem(items[i]);
      results[i] = r instanceof Promise ? await r : r;
    }
  };
  await Promise.all(Array.from({ length: Math.min(BATCH_CONCURRENCY, items.length) }, worker));
  const failed = results.filter((r) => 'error' in r).length;
  if (!failed) return { data: { batch_results: results } };
  // sign, verify, hmac and rewrap, as Vault: a 200 whose batch_results carry each item's
  // error, even when every item failed.
  if (!('partial_failure_response_code' in fields)) return { data: { batch_results: results } };
  // encrypt/decrypt/rewrap, as current Vault: any failed item makes the answer a 400 that
  // still carries batch_results (partial_failure_response_code overrides it when some
  // items succeeded). Vault 1.8 answered 200.
  let code = 400;
  const override = top.get('partial_failure_response_code');
  if (override !== undefined && override !== null && failed < results.length) {
    if (Number.isInteger(override) && (override as number) >= 1 && (override as number) <= 599) code = override as number;
  }
  return batchStatus(code, results);
}

/** A JSON answer with a status of our choosing (Vault's RespondWithStatusCode). */
function batchStatus(code: number, results: ItemResult[]): { data: Record<string, unknown> } {
  const body = {
    request_id: '',
    lease_id: '',
    renewable: false,
    lease_duration: 0,
    data: { batch_results: results },
    wrap_info: null,
    warnings: null,
    auth: null,
  };
  return { data: { http_content_type: 'application/json', http_raw_body: Buffer.from(JSON.stringify(body)).toString('base64'), http_status_code: code } };
}

/** An optional integer field: undefined when absent, null or "", else Number(v). */
export const optInt = (v: unknown): number | undefined => (v === undefined || v === null || v === '' ? undefined : Number(v));
/** The key name captured from the path. */
export const name = (d: FieldData) => d.str('name');
