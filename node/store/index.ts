/**
 * The node's LevelDB store (classic-level). One database per data directory, split
 * into sections (sublevels) so each owner has its own key space:
 *   signer    consensus signer record (last height/round/step/signature)
 *   consensus decided heights, certificates, lock/valid value (consensus driver)
 *   peers     peer book: last known addresses per peer id
 *   seq       durable monotonic counters (advert sequence numbers, ...)
 *   invites   invites issued by this node and invites it joined with
 *   meta      store version and bookkeeping
 * Values are bytes; JSON helpers are provided for the small records.
 */
import { ClassicLevel } from 'classic-level';
import { RuntimeError } from '../runtime/errors.js';
import { errnoCode } from '../../base/errors.js';

export const STORE_SECTIONS = ['signer', 'consensus', 'peers', 'seq', 'invites', 'meta'] as const;
export type StoreSection = (typeof STORE_SECTIONS)[number];

/** The shape of a section: keys are strings, values bytes. */
export interface StoreSectionDb {
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, value: Uint8Array, opts?: { sync?: boolean }): Promise<void>;
  del(key: string, opts?: { sync?: boolean }): Promise<void>;
  batch(ops: Array<{ type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string }>, opts?: { sync?: boolean }): Promise<void>;
  entries(opts?: { gte?: string; lt?: string; limit?: number }): AsyncIterable<[string, Uint8Array]>;
}

export interface SeqCounter {
  /** The next number, strictly greater than any returned before, across restarts. */
  next(): Promise<number>;
}

export interface Store {
  readonly path: string;
  section(name: StoreSection): StoreSectionDb;
  getJson(section: StoreSection, key: string): Promise<unknown>;
  putJson(section: StoreSection, key: string, value: unknown, opts?: { sync?: boolean }): Promise<void>;
  /** A durable counter; reserves blocks of `SEQ_BLOCK` so most calls do not touch disk. */
  seq(name: string): SeqCounter;
  close(): Promise<void>;
  readonly closed: boolean;
}

export const STORE_VERSION = 1;
/**
 * Numbers reserved per disk write. A crash skips at most this many (harmless: the
 * counter only has to grow); 1,000 adverts at one per 2 s is ~half an hour of writes saved.
 */
export const SEQ_BLOCK = 1000;
/** Iteration bound when a caller gives none (a store section is never read unbounded). */
export const ENTRIES_LIMIT_DEFAULT = 10_000;

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

function causeCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'cause' in e) return errnoCode((e).cause);
  return undefined;
}

/** Opens the LevelDB database, turning its failures into the store's typed errors. */
async function openDb(path: string, createIfMissing: boolean): Promise<ClassicLevel<string, Uint8Array>> {
  const db = new ClassicLevel<string, Uint8Array>(path, { valueEncoding: 'view', createIfMissing });
  try {
    await db.open();
  } catch (e) {
    const c = causeCode(e) ?? errnoCode(e);
    if (c === 'LEVEL_LOCKED') throw new RuntimeError('ERR_STORE_LOCKED', `store ${path} is locked by another process (another fednode on this data directory?)`, { path }, { cause: e });
    if (c === 'LEVEL_CORRUPTION') throw new RuntimeError('ERR_STORE_CORRUPT', `store ${path} is corrupt: ${String((e as { cause?: { message?: string } }).cause?.message ?? e)}`, { path }, { cause: e });
    throw new RuntimeError('ERR_STORE_OPEN', `cannot open store ${path}: ${e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e)}`, { path }, { cause: e });
  }
  return db;
}

/**
 * A section: a key prefix on the root database (as sublevels are), so that `sync` reaches
 * LevelDB (sublevel option types do not carry it).
 */
function sectionDb(db: ClassicLevel<string, Uint8Array>, name: StoreSection): StoreSectionDb {
  const prefix = `!${name}!`;
  const end = `!${name}"`; // '"' is the character after '!'
  const k = (key: string): string => prefix + key;
  return {
    get: (key) => db.get(k(key)),
    put: (key, v, o) => db.put(k(key), v, { sync: o?.sync ?? false }),
    del: (key, o) => db.del(k(key), { sync: o?.sync ?? false }),
    batch: (ops, o) => db.batch(ops.map((op) => (op.type === 'put' ? { type: 'put' as const, key: k(op.key), value: op.value } : { type: 'del' as const, key: k(op.key) })), { sync: o?.sync ?? false }),
    entries: (o) => ({
      async *[Symbol.asyncIterator]() {
        const it = db.iterator({ gte: o?.gte !== undefined ? k(o.gte) : prefix, lt: o?.lt !== undefined ? k(o.lt) : end, limit: o?.limit ?? ENTRIES_LIMIT_DEFAULT });
        try {
          for await (const [key, value] of it) yield [key.slice(prefix.length), value] as [string, Uint8Array];
        } finally {
          await it.close();
        }
      },
    }),
  };
}

/** Writes the version of a new store, refuses (and closes) a store of another version. */
async function checkVersion(db: ClassicLevel<string, Uint8Array>, meta: StoreSectionDb, path: string): Promise<void> {
  const version = await meta.get('version');
  if (version === undefined) {
    await meta.put('version', enc.encode(String(STORE_VERSION)), { sync: true });
    return;
  }
  const v = Number(dec.decode(version));
  if (v !== STORE_VERSION) {
    await db.close();
    throw new RuntimeError('ERR_STORE_CORRUPT', `store ${path} has version ${v}, this fednode reads version ${STORE_VERSION}`, { path, version: v });
  }
}

export async function openStore(path: string, opts: { createIfMissing?: boolean } = {}): Promise<Store> {
  const db = await openDb(path, opts.createIfMissing ?? true);
  const sections = new Map<StoreSection, StoreSectionDb>();
  for (const name of STORE_SECTIONS) sections.set(name, sectionDb(db, name));
  const section = (name: StoreSection): StoreSectionDb => {
    const s = sections.get(name);
    if (s === undefined) throw new RuntimeError('ERR_STORE_OPEN', `unknown store section ${name}`, { section: name });
    return s;
  };
  await checkVersion(db, section('meta'), path);

  const counters = new Map<string, { next: number; reservedUpTo: number; chain: Promise<unknown> }>();
  const seqDb = section('seq');
  const store: Store = {
    path,
    get closed() {
      return db.status !== 'open';
    },
    section,
    async getJson(s, k) {
      const v = await section(s).get(k);
      if (v === undefined) return undefined;
      try {
        return JSON.parse(dec.decode(v)) as unknown;
      } catch (e) {
        throw new RuntimeError('ERR_STORE_CORRUPT', `store ${path}: ${s}/${k} is not valid JSON`, { path, section: s, key: k }, { cause: e });
      }
    },
    async putJson(s, k, value, o) {
      await section(s).put(k, enc.encode(JSON.stringify(value)), o);
    },
    seq(name) {
      return {
        next: () => {
          let c = counters.get(name);
          if (c === undefined) {
            c = { next: -1, reservedUpTo: -1, chain: Promise.resolve() };
            counters.set(name, c);
          }
          const state = c;
          const run = async (): Promise<number> => {
            if (state.next < 0) {
              const raw = await seqDb.get(name);
              const hw = raw === undefined ? 0 : Number(dec.decode(raw));
              state.next = Number.isSafeInteger(hw) && hw >= 0 ? hw + 1 : 1;
              state.reservedUpTo = state.next - 1;
            }
            if (state.next > state.reservedUpTo) {
              const upTo = state.next + SEQ_BLOCK - 1;
              await seqDb.put(name, enc.encode(String(upTo)), { sync: true });
              state.reservedUpTo = upTo;
            }
            return state.next++;
          };
          const p = state.chain.then(run, run);
          state.chain = p.catch(() => undefined);
          return p;
        },
      };
    },
    async close() {
      if (db.status === 'open' || db.status === 'opening') await db.close();
    },
  };
  return store;
}
