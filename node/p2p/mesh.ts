/**
 * The mesh keeper: every member connected to every member (bounded, mesh-plan.ts). It holds
 * the target set (decided members, validators of the height, bootstrap peers), the address
 * book (addr-book.ts) and the dial schedule, and dials missing targets through a small
 * transport (host.ts binds libp2p). It re-evaluates on membership change, on a new height
 * (`evaluate()`, the validators may have changed), on connect / disconnect, on new address
 * information and on a 1 s tick (backoff delays running out).
 */
import type { Logger } from '../log.js';
import { nullLogger } from '../log.js';
import type { AddressBook, AddrSource, LearnResult } from './addr-book.js';
import type { MemberSource } from './members.js';
import { chooseTargets, DialSchedule, FULL_MESH_MAX, RANDOM_SUBSET_SIZE } from './mesh-plan.js';
import type { BackoffOptions, MissingReason } from './mesh-plan.js';

/** What the keeper needs of libp2p. */
export interface MeshTransport {
  /** Dial `peer` at these addresses (no /p2p suffix; the transport adds it). Rejects on failure. */
  dial(peer: string, addrs: readonly string[]): Promise<void>;
  isConnected(peer: string): boolean;
}

export interface MeshOptions {
  /** Full mesh up to this many other members. @default FULL_MESH_MAX (64) */
  fullMeshMax?: number;
  /** Random members kept beyond the full-mesh bound (plus all validators). @default RANDOM_SUBSET_SIZE (32) */
  subsetSize?: number;
  /** How often due dials are checked. @default 1_000 */
  tickMs?: number;
  /** Book writes are batched: at most one per this interval (a change is rare: a new peer or a moved one; it should reach the disk before a crash). @default 1_000 */
  flushMs?: number;
}

export interface MeshKeeperInit extends MeshOptions {
  self: string;
  members: MemberSource;
  /** Validators of the current height (targets even beyond the full-mesh bound). @default none */
  validators?: () => readonly string[];
  /** Bootstrap peers (peer id -> addresses): targets, and their addresses go into the book. */
  bootstrap?: ReadonlyMap<string, readonly string[]>;
  book: AddressBook;
  transport: MeshTransport;
  backoff?: Partial<BackoffOptions>;
  now: () => number;
  /** Jitter source, [0, 1). */
  rand: () => number;
  logger?: Logger;
  /** Called on every tick for each connected target (e.g. reopen direct channels). */
  onConnectedTick?: (peer: string) => void;
}

export interface MeshMissing {
  peer: string;
  reason: MissingReason;
  failures: number;
  nextInMs: number | null;
  lastError: string | null;
  addrs: string[];
}

export interface MeshStatus {
  /** Peers this node keeps a connection to. */
  targets: number;
  connected: number;
  missing: MeshMissing[];
  /** 'full' up to fullMeshMax other members, else 'subset'. */
  mode: 'full' | 'subset';
  fullMeshMax: number;
  /** Peers in the address book, and addresses refused since start (never dialled). */
  bookPeers: number;
  rejectedAddrs: number;
  lastBookError: string | null;
}

export class MeshKeeper {
  private readonly i: MeshKeeperInit;
  private readonly log: Logger;
  private readonly schedule: DialSchedule;
  private readonly fullMeshMax: number;
  private readonly subsetSize: number;
  private timer: ReturnType<typeof setInterval> | null = null;
  private unsubscribe: (() => void) | null = null;
  private running = false;
  private rejected = 0;
  private lastFlushMs = 0;
  private bookError: string | null = null;

  constructor(init: MeshKeeperInit) {
    this.i = init;
    this.log = init.logger ?? nullLogger;
    this.schedule = new DialSchedule(init.backoff);
    this.fullMeshMax = init.fullMeshMax ?? FULL_MESH_MAX;
    this.subsetSize = init.subsetSize ?? RANDOM_SUBSET_SIZE;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (const [peer, addrs] of this.i.bootstrap ?? []) this.learn(peer, addrs, 'bootstrap');
    this.unsubscribe = this.i.members.onChange(() => this.evaluate());
    this.timer = setInterval(() => this.tick(), this.i.tickMs ?? 1_000);
    this.timer.unref?.();
    this.evaluate();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.flush(true);
  }

  /** Recompute the targets (membership or validators changed) and dial what is due. */
  evaluate(): void {
    if (!this.running) return;
    const members = this.i.members.members();
    const bootstrap = [...(this.i.bootstrap?.keys() ?? [])];
    const targets = chooseTargets({
      self: this.i.self,
      members,
      validators: this.i.validators?.() ?? [],
      extra: bootstrap,
      fullMeshMax: this.fullMeshMax,
      subsetSize: this.subsetSize,
    });
    this.schedule.setTargets(targets);
    // The book keeps members and bootstrap peers only (a removed member's addresses go).
    if (members.length > 0) this.i.book.retain(new Set([...members, ...bootstrap]));
    this.dialDue();
  }

  /** Addresses for `peer` from `source`; new ones make it due at once. */
  learn(peer: string, addrs: readonly unknown[], source: AddrSource): LearnResult {
    // Members and bootstrap peers only: a non-member holding the PSK does not fill the book.
    if (peer === this.i.self || !(this.i.members.isMember(peer) || this.i.bootstrap?.has(peer) === true)) return { added: 0, rejected: [] };
    const r = this.i.book.learn(peer, addrs, source, this.i.now());
    if (r.rejected.length > 0) {
      this.rejected += r.rejected.length;
      this.log.debug('addresses refused', { peer, source, rejected: r.rejected.slice(0, 4) });
    }
    if (r.added > 0) {
      this.schedule.reset(peer);
      this.dialDue();
    }
    return r;
  }

  connected(peer: string): void {
    this.schedule.succeeded(peer);
  }

  disconnected(peer: string): void {
    if (!this.running) return;
    // Redial soon: the peer may have restarted (on the same or a new address).
    this.schedule.reset(peer);
    this.dialDue();
  }

  status(): MeshStatus {
    const nowMs = this.i.now();
    const isConn = (p: string): boolean => this.i.transport.isConnected(p);
    const targets = this.schedule.targets();
    const missing = this.schedule.missing(nowMs, isConn, (p) => this.i.book.has(p)).map((m) => ({ ...m, addrs: this.i.book.get(m.peer) }));
    const others = this.i.members.members().filter((m) => m !== this.i.self).length;
    return {
      targets: targets.length,
      connected: targets.filter(isConn).length,
      missing,
      mode: others <= this.fullMeshMax ? 'full' : 'subset',
      fullMeshMax: this.fullMeshMax,
      bookPeers: this.i.book.size(),
      rejectedAddrs: this.rejected,
      lastBookError: this.bookError,
    };
  }

  private tick(): void {
    if (!this.running) return;
    this.dialDue();
    if (this.i.onConnectedTick !== undefined) for (const p of this.schedule.targets()) if (this.i.transport.isConnected(p)) this.i.onConnectedTick(p);
    void this.flush(false);
  }

  private dialDue(): void {
    if (!this.running) return;
    const due = this.schedule.due(this.i.now(), (p) => this.i.transport.isConnected(p), (p) => this.i.book.has(p));
    for (const peer of due) {
      const addrs = this.i.book.get(peer);
      this.schedule.started(peer);
      this.i.transport.dial(peer, addrs).then(
        () => {
          this.schedule.succeeded(peer);
        },
        (err: unknown) => {
          const msg = err instanceof Error ? err.message : String(err);
          // A simultaneous dial from the other side may have won (our duplicate refused).
          if (this.i.transport.isConnected(peer)) this.schedule.succeeded(peer);
          else {
            this.schedule.failed(peer, this.i.now(), this.i.rand(), msg);
            this.log.debug('mesh dial failed', { peer, addrs, err: msg });
          }
        },
      );
    }
  }

  private async flush(force: boolean): Promise<void> {
    const nowMs = this.i.now();
    if (!force && nowMs - this.lastFlushMs < (this.i.flushMs ?? 1_000)) return;
    this.lastFlushMs = nowMs;
    try {
      await this.i.book.flush();
      this.bookError = null;
    } catch (e) {
      // The node keeps running on its in-memory book; status and doctor show the error.
      this.bookError = e instanceof Error ? e.message : String(e);
      this.log.warn('address book not written', { err: this.bookError });
    }
  }
}
