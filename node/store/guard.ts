/**
 * Corruption watchdog over a running store: every section call (get, put, del, batch, iteration)
 * that fails with LevelDB's corruption status (classic-level code LEVEL_CORRUPTION: a bad block
 * checksum, a truncated table) reports it ONCE to `onCorrupt`, which stops the node (node.ts), and
 * is still rethrown to its caller. Without it a corrupt block read by catch-up serving or the
 * registry listing would be a failed request, and the node would go on from a partial state.
 */
import { errnoCode } from '../../base/errors.js';
import type { Store, StoreSection, StoreSectionDb } from './index.js';

/** True when `e` (or its cause) is LevelDB's corruption status. */
export function isLevelCorruption(e: unknown): boolean {
  if (errnoCode(e) === 'LEVEL_CORRUPTION') return true;
  const cause = typeof e === 'object' && e !== null && 'cause' in e ? (e).cause : undefined;
  return cause !== undefined && errnoCode(cause) === 'LEVEL_CORRUPTION';
}

export function guardStore(store: Store, onCorrupt: (err: unknown, where: string) => void): Store {
  let reported = false;
  const check = (e: unknown, where: string): never => {
    if (!reported && isLevelCorruption(e)) {
      reported = true;
      onCorrupt(e, where);
    }
    throw e;
  };
  const wrapped = new Map<StoreSection, StoreSectionDb>();
  const section = (name: StoreSection): StoreSectionDb => {
    const have = wrapped.get(name);
    if (have !== undefined) return have;
    const s = store.section(name);
    const w: StoreSectionDb = {
      get: (k) => s.get(k).catch((e: unknown) => check(e, `${name}/${k}`)),
      put: (k, v, o) => s.put(k, v, o).catch((e: unknown) => check(e, `${name}/${k}`)),
      del: (k, o) => s.del(k, o).catch((e: unknown) => check(e, `${name}/${k}`)),
      batch: (ops, o) => s.batch(ops, o).catch((e: unknown) => check(e, `${name} (batch)`)),
      entries: (o) => ({
        async *[Symbol.asyncIterator]() {
          try {
            yield* s.entries(o);
          } catch (e) {
            check(e, `${name} (iteration)`);
          }
        },
      }),
    };
    wrapped.set(name, w);
    return w;
  };
  return {
    get path() {
      return store.path;
    },
    get closed() {
      return store.closed;
    },
    section,
    getJson: (s, k) => store.getJson(s, k).catch((e: unknown) => check(e, `${s}/${k}`)),
    putJson: (s, k, v, o) => store.putJson(s, k, v, o).catch((e: unknown) => check(e, `${s}/${k}`)),
    seq: (name) => {
      const c = store.seq(name);
      return { next: () => c.next().catch((e: unknown) => check(e, `seq/${name}`)) };
    },
    close: () => store.close(),
  };
}
