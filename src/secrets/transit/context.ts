// What every transit path needs: the mount's policies and a way to reach a managed key.
import type { ManagedKeys } from '../managed-keys';
import type { ManagedKey } from '../../keys/types';
import { UserError, type FieldData, type Request } from '../framework';
import { Policies, type Policy } from './policy';

export interface Transit {
  policies: Policies;
  managedFor(p: Policy): (() => Promise<ManagedKey>) | undefined;
}

export function transitContext(policies: Policies, managedKeys: ManagedKeys): Transit {
  return {
    policies,
    managedFor: (p) => (p.type === 'managed_key' ? () => managedKeys.byName(p.managed_key_name!) : undefined),
  };
}

/** Run one item, or each of batch_input (per-item errors; 400 only when every item failed). */
export async function batch(req: Request, one: (d: { get(k: string): unknown }) => Promise<Record<string, unknown>>): Promise<{ data: Record<string, unknown> }> {
  const top = req.data;
  if (!top.has('batch_input')) return { data: await one({ get: (k) => top.get(k) }) };
  const items = top.get<unknown[]>('batch_input');
  if (!Array.isArray(items) || items.length === 0) throw new UserError('batch_input must be a non-empty list');
  if (items.length > 10_000) throw new UserError('batch_input holds more than 10000 items');
  const results = await Promise.all(items.map(async (raw) => {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return { error: 'each batch_input item must be an object' };
    const item = raw as Record<string, unknown>;
    try {
      return await one({ get: (k) => (k in item ? item[k] : top.get(k)) });
    } catch (e) {
      if (e instanceof UserError) return { error: e.message, ...(item.reference !== undefined ? { reference: item.reference } : {}) };
      throw e;
    }
  }));
  if (results.every((r) => 'error' in r)) throw new UserError(`every batch item failed; first: ${(results[0] as { error: string }).error}`);
  return { data: { batch_results: results.map((r, i) => ({ ...r, ...((items[i] as Record<string, unknown>)?.reference !== undefined ? { reference: (items[i] as Record<string, unknown>).reference } : {}) })) } };
}

export const optInt = (v: unknown): number | undefined => (v === undefined || v === null || v === '' ? undefined : Number(v));
export const name = (d: FieldData) => d.str('name');
