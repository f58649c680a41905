// One-at-a-time runs per id (a key name, a config path): each call runs after every earlier
// call with the same id has settled, whatever their outcome; the map holds an id only while
// a run for it is pending.

/** Run fn after every earlier call with the same id has finished. */
export async function serialised<T>(locks: Map<string, Promise<unknown>>, id: string, fn: () => Promise<T>): Promise<T> {
  const prev = locks.get(id) ?? Promise.resolve();
  const run = prev.catch(() => undefined).then(fn);
  locks.set(id, run);
  try {
    return await run;
  } finally {
    if (locks.get(id) === run) locks.delete(id);
  }
}
