/**
 * The address book: where each member (and bootstrap peer) was last known to listen, learnt
 * from identify, the libp2p peer store, signed adverts and the bootstrap list, persisted in
 * the data directory (`addresses.json`) so a restarted node finds the others even when its
 * bootstrap peer moved. Every address is checked (addrs.ts) before it is kept; a file that does
 * not parse or holds an entry that fails the checks stops the node with ERR_ADDRBOOK_CORRUPT
 * naming the file and the recovery, never a silent reset.
 */
import { readFile } from 'node:fs/promises';
import { peerIdFromString } from '@libp2p/peer-id';
import { errnoCode } from '../../base/errors.js';
import { writeFileAtomic } from '../datadir.js';
import { ADDRS_PER_PEER_MAX, checkDialAddr } from './addrs.js';
import { P2pError } from './errors.js';
import { MEMBERS_MAX_DEFAULT } from './members.js';

/**
 * Where an address came from. `identify` and `advert` are the peer's own current list (they
 * replace what was known: an old port must not be dialled first forever); `peer-store`,
 * `bootstrap` and `dialled` (an address a dial succeeded on) add to it.
 */
export type AddrSource = 'identify' | 'advert' | 'peer-store' | 'bootstrap' | 'dialled';
const SOURCES: readonly AddrSource[] = ['identify', 'advert', 'peer-store', 'bootstrap', 'dialled'];
const REPLACING: ReadonlySet<AddrSource> = new Set(['identify', 'advert']);

export interface BookEntry {
  readonly addr: string;
  readonly source: AddrSource;
  readonly seenMs: number;
}

/** Peers kept: the member bound (members.ts); past it the least recently seen peer goes. */
export const BOOK_PEERS_MAX = MEMBERS_MAX_DEFAULT;
/** The file holds at most BOOK_PEERS_MAX x 8 entries (~300 KiB); anything larger is not ours. */
const BOOK_FILE_MAX_BYTES = 4 * 1024 * 1024;
const FILE_VERSION = 1;

export interface LearnResult {
  /** Addresses new to the book for this peer. */
  readonly added: number;
  /** Addresses refused, with the rule they broke (never dialled). */
  readonly rejected: ReadonlyArray<{ readonly addr: string; readonly reason: string }>;
}

function corrupt(path: string, reason: string): P2pError {
  return new P2pError(
    'ERR_ADDRBOOK_CORRUPT',
    `address book ${path} is damaged (${reason}); move it away to start with an empty book (the node re-learns addresses from its bootstrap list, identify and adverts)`,
    { path, reason },
  );
}

export class AddressBook {
  /** peer -> entries, most recently seen first (Map order: least recently touched peer first). */
  private readonly peers = new Map<string, BookEntry[]>();
  private dirty = false;
  private writing: Promise<void> | null = null;

  private constructor(readonly path: string | null) {}

  /** A book that is never written (tests, tools). */
  static inMemory(): AddressBook {
    return new AddressBook(null);
  }

  /** Load `path` (missing = empty). Throws ERR_ADDRBOOK_CORRUPT on anything it cannot trust. */
  static async open(path: string): Promise<AddressBook> {
    const book = new AddressBook(path);
    let text: string;
    try {
      const buf = await readFile(path);
      if (buf.length > BOOK_FILE_MAX_BYTES) throw corrupt(path, `${buf.length} bytes, more than ${BOOK_FILE_MAX_BYTES}`);
      text = buf.toString('utf8');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return book;
      if (e instanceof P2pError) throw e;
      throw new P2pError('ERR_ADDRBOOK_CORRUPT', `cannot read address book ${path}: ${e instanceof Error ? e.message : String(e)}`, { path }, { cause: e });
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw corrupt(path, `not JSON: ${e instanceof Error ? e.message : String(e)}`);
    }
    book.load(doc, path);
    return book;
  }

  private load(doc: unknown, path: string): void {
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw corrupt(path, 'not an object');
    const d = doc as Record<string, unknown>;
    for (const k of Object.keys(d)) if (k !== 'version' && k !== 'peers') throw corrupt(path, `unknown field '${k}'`);
    if (d['version'] !== FILE_VERSION) throw corrupt(path, `version ${JSON.stringify(d['version'])}, expected ${FILE_VERSION}`);
    const peers = d['peers'];
    if (peers === null || typeof peers !== 'object' || Array.isArray(peers)) throw corrupt(path, "'peers' is not an object");
    const list = Object.entries(peers as Record<string, unknown>);
    if (list.length > BOOK_PEERS_MAX) throw corrupt(path, `${list.length} peers, at most ${BOOK_PEERS_MAX}`);
    const rows: Array<[string, BookEntry[]]> = [];
    for (const [peer, entries] of list) {
      try {
        peerIdFromString(peer);
      } catch {
        throw corrupt(path, `'${peer.slice(0, 80)}' is not a peer id`);
      }
      if (!Array.isArray(entries) || entries.length === 0 || entries.length > ADDRS_PER_PEER_MAX) throw corrupt(path, `peer ${peer}: expected 1..${ADDRS_PER_PEER_MAX} entries`);
      const out: BookEntry[] = [];
      for (const e of entries as unknown[]) {
        const r = (e ?? {}) as Record<string, unknown>;
        const c = checkDialAddr(r['addr'], peer);
        if (!c.ok) throw corrupt(path, `peer ${peer}: address ${JSON.stringify(r['addr'])}: ${c.reason}`);
        const source = r['source'];
        if (typeof source !== 'string' || !(SOURCES as readonly string[]).includes(source)) throw corrupt(path, `peer ${peer}: unknown source ${JSON.stringify(source)}`);
        const seenMs = r['seenMs'];
        if (typeof seenMs !== 'number' || !Number.isSafeInteger(seenMs) || seenMs < 0) throw corrupt(path, `peer ${peer}: seenMs ${JSON.stringify(seenMs)} is not a time`);
        if (Object.keys(r).length !== 3) throw corrupt(path, `peer ${peer}: entry with fields other than addr, source, seenMs`);
        out.push({ addr: c.addr, source: source as AddrSource, seenMs });
      }
      rows.push([peer, out]);
    }
    // Least recently seen first, as the in-memory order (eviction takes the first).
    rows.sort((a, b) => (a[1][0]?.seenMs ?? 0) - (b[1][0]?.seenMs ?? 0));
    for (const [p, e] of rows) this.peers.set(p, e);
  }

  /** Addresses of `peer`, most recently seen first. */
  get(peer: string): string[] {
    return (this.peers.get(peer) ?? []).map((e) => e.addr);
  }

  entries(peer: string): readonly BookEntry[] {
    return this.peers.get(peer) ?? [];
  }

  has(peer: string): boolean {
    return this.peers.has(peer);
  }

  size(): number {
    return this.peers.size;
  }

  /**
   * Record what `source` says about `peer`'s addresses (checked: a garbage address is refused
   * and reported, not kept). identify / advert replace the peer's list; others add to it.
   */
  learn(peer: string, addrs: readonly unknown[], source: AddrSource, nowMs: number): LearnResult {
    const rejected: Array<{ addr: string; reason: string }> = [];
    const fresh: string[] = [];
    for (const a of addrs.slice(0, 4 * ADDRS_PER_PEER_MAX)) {
      const c = checkDialAddr(a, peer);
      if (!c.ok) rejected.push({ addr: typeof a === 'string' ? a.slice(0, 120) : typeof a, reason: c.reason });
      else if (!fresh.includes(c.addr)) fresh.push(c.addr);
    }
    if (fresh.length === 0) return { added: 0, rejected };
    const old = this.peers.get(peer) ?? [];
    const kept = REPLACING.has(source) ? [] : old.filter((e) => !fresh.includes(e.addr));
    const next = [...fresh.map((addr) => ({ addr, source, seenMs: nowMs })), ...kept].slice(0, ADDRS_PER_PEER_MAX);
    const added = fresh.filter((a) => !old.some((e) => e.addr === a)).length;
    const same = next.length === old.length && next.every((e, i) => e.addr === old[i]?.addr);
    this.peers.delete(peer);
    if (this.peers.size >= BOOK_PEERS_MAX) {
      const oldest = this.peers.keys().next().value;
      if (oldest !== undefined) this.peers.delete(oldest);
    }
    this.peers.set(peer, next);
    // Only a changed list is worth a disk write (identify and adverts repeat themselves).
    if (!same) this.dirty = true;
    return { added, rejected };
  }

  /** Keep only these peers (members and bootstrap peers); the rest are forgotten. */
  retain(keep: ReadonlySet<string>): void {
    for (const p of [...this.peers.keys()]) {
      if (!keep.has(p)) {
        this.peers.delete(p);
        this.dirty = true;
      }
    }
  }

  /** Write the book if it changed (atomic: tmp, fsync, rename, fsync dir). One write at a time. */
  async flush(): Promise<void> {
    if (this.path === null || !this.dirty) return;
    if (this.writing !== null) return this.writing;
    this.dirty = false;
    const doc = { version: FILE_VERSION, peers: Object.fromEntries(this.peers) };
    this.writing = writeFileAtomic(this.path, JSON.stringify(doc, null, 1) + '\n').finally(() => {
      this.writing = null;
    });
    try {
      await this.writing;
    } catch (e) {
      this.dirty = true; // try again at the next flush
      throw e;
    }
  }
}
