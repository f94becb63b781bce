/**
 * The consensus driver's ports: everything it needs from the world, as small interfaces
 * (TigerBeetle's replica over MessageBus, Storage and Time). Production binds them to libp2p,
 * LevelDB, the signer file and real timers (`bind-libp2p.ts`, `bind-node.ts`); the simulator
 * binds them to its deterministic engine and crashable in-memory stores (simnet/). The driver
 * itself (driver.ts) reaches time, disk and network only through these.
 */
import type { ConsensusMessage } from '../../consensus/types.js';
import type { AuditLine } from './audit-log.js';
import type { DecisionInput } from './decided-log.js';
import type { SignerState } from './signer-file.js';
import type { SyncRequest } from './sync.js';

/** Wall clock in milliseconds (production: Date.now; simnet: the virtual clock). */
export type Clock = () => number;

export interface TimerHandle {
  cancel(): void;
}

/** Deferred work. Callbacks run outside the caller's stack and must not throw (the driver guards them). */
export interface Timers {
  /** Run `fn` once after `ms` milliseconds. */
  after(ms: number, fn: () => void): TimerHandle;
  /** Run `fn` every `ms` milliseconds until cancelled. */
  every(ms: number, fn: () => void): TimerHandle;
  /** Run `fn` on a later turn, before any timer that is due later (production: setImmediate). */
  soon(fn: () => void): void;
}

/** A consensus-topic envelope that reached this node, its signature already verified by the transport. */
export interface InboundEnvelope {
  /** Peer id of the envelope's signer. */
  readonly signerId: string;
  readonly kind: string;
  readonly body: unknown;
}

/** An envelope built once by `seal` and sent by any route (opaque to the driver). */
export interface Sealed {
  readonly kind: string;
}

/**
 * The consensus wire: direct per-member channels, gossip as the fallback, and catch-up
 * request/response. The fallback policy (when a message also goes by gossip) is the driver's.
 */
export interface ConsensusTransport {
  /** Build this node's envelope around `body` once (signature, sequence number, time). Throws when it cannot. */
  seal(kind: string, body: unknown): Sealed;
  /** Send on the open direct channels to `to`; says which peers had one. Throws when the envelope is oversize. */
  sendDirect(m: Sealed, to: readonly string[]): { readonly sent: readonly string[]; readonly missing: readonly string[] };
  /** Publish by gossip (flood and relay). Rejects when it could not be published. */
  publish(m: Sealed): Promise<void>;
  /** Peers with an open direct channel now. */
  directPeers(): readonly string[];
  /** Peers connected now (directly: the ones a catch-up request can reach). */
  connectedPeers(): readonly string[];
  /** Receive consensus envelopes; returns the unsubscribe function. */
  onEnvelope(handler: (e: InboundEnvelope) => void): () => void;
  /** Serve catch-up: `answer` builds the response bytes; `served` reports each exchange (false: bad or failed request). */
  serveSync(answer: (req: SyncRequest) => Promise<Uint8Array>, served: (ok: boolean, remote: string) => void): Promise<void>;
  /** One catch-up exchange with `peer`: the raw response bytes (decoded and verified by the driver). */
  requestSync(peer: string, req: SyncRequest, timeoutMs: number): Promise<Uint8Array>;
  /** Stop serving and receiving. */
  close(): Promise<void>;
}

/** The signer record with this node's own signed messages of the height (durable before anything leaves). */
export interface SignerStore {
  /** Create what the store needs (directories); then `load` may be called. */
  open(): Promise<void>;
  load(): Promise<SignerState | null>;
  /** Durable when it resolves (production: tmp, fsync, rename, fsync dir). */
  write(state: SignerState): Promise<void>;
  close(): Promise<void>;
}

/** The decided log: one entry per height with its commit certificate (durable when a put resolves). */
export interface DecidedStore {
  put(d: DecisionInput): Promise<void>;
  /** Several heights in one durable write. */
  putMany(ds: readonly DecisionInput[]): Promise<void>;
  /** Stored entries with height >= from, ascending, at most `limit`. */
  raw(from: number, limit: number): AsyncIterable<{ height: number; bytes: Uint8Array }>;
}

/** The append-only audit of every signature (optional; durable before the message leaves). */
export interface AuditSink {
  open(): Promise<void>;
  append(lines: readonly AuditLine[]): Promise<void>;
  close(): Promise<void>;
}

/** Everything the driver reaches outside itself. The transport comes at `start`. */
export interface DriverPorts {
  readonly now: Clock;
  readonly timers: Timers;
  readonly signer: SignerStore;
  readonly decided: DecidedStore;
  readonly audit: AuditSink | null;
  /** Where the decided log lives, for error messages (a path, or the simulator's name for it). */
  readonly decidedWhere: string;
  /**
   * Ed25519 over this node's key and the verification of others' (default: crypto/ed25519.ts).
   * The simulator binds memoised ones: Ed25519 is deterministic, and one signature is checked by
   * every simulated node.
   */
  readonly sign?: (digest: Uint8Array) => Uint8Array;
  readonly verify?: (publicKey: Uint8Array, digest: Uint8Array, signature: Uint8Array) => boolean;
}

/** TEST ONLY hooks. Never set in production: they exist for Byzantine-behaviour tests and the simulator. */
export interface TestOnlyHooks {
  /**
   * Called after each own message is broadcast; whatever it returns is broadcast too, in this
   * node's envelopes (e.g. a conflicting, validly signed vote: an equivocator).
   */
  readonly extraBroadcasts?: (m: ConsensusMessage) => readonly ConsensusMessage[];
  /** Replaces the value this node proposes (e.g. an invalid batch: a Byzantine proposer). */
  readonly valueToPropose?: (height: number, round: number, value: Uint8Array) => Uint8Array;
}
