/**
 * Counting connections that fail the cluster key check (issue 17). @libp2p/pnet wraps the raw
 * TCP stream in XSalsa20 keyed by swarm.key; with a different key each side reads noise, so the
 * next step (multistream-select of the encrypter, then the noise handshake) fails. Nothing in
 * pnet itself can tell a wrong key from a broken peer, so this wrapper counts the connections
 * whose upgrade is aborted after the pnet layer and before the encrypted handshake finished,
 * with the error the upgrader gave, and the remote address.
 *
 * Wraps the protector factory: `connectionProtector: countPnetFailures(preSharedKey({ psk }), sink)`.
 */
import type { ConnectionProtector, MultiaddrConnection } from '@libp2p/interface';

export interface PnetFailure {
  readonly remoteAddr: string;
  /** The error the upgrade was aborted with (its name and message). */
  readonly error: string;
  readonly atMs: number;
}

export interface PnetFailureStats {
  /** Connections aborted during the handshake after the pnet layer, since start. */
  readonly failures: number;
  readonly lastAtMs: number | null;
  /** The most recent failures, newest last (bounded). */
  readonly recent: readonly PnetFailure[];
}

/** Recent failures kept for `doctor` and the log: the last few addresses are what an operator needs. */
export const PNET_RECENT_MAX = 16;
/** Longer than libp2p's inbound upgrade timeout (10 s by default) with room: an abort later is no handshake failure. */
const HANDSHAKE_WINDOW_MS = 30_000;
/** Error names of an upgrade that never got through the encrypted handshake (libp2p 2.x upgrader, multistream-select, noise). */
const HANDSHAKE_ERRORS = new Set(['EncryptionFailedError', 'UnsupportedProtocolError', 'InvalidMessageError', 'InvalidCryptoExchangeError', 'UnexpectedEOFError', 'MuxerUnavailableError', 'ProtocolError']);

export class PnetFailureCounter {
  private failures = 0;
  private lastAtMs: number | null = null;
  private readonly recent: PnetFailure[] = [];
  private readonly listeners = new Set<(f: PnetFailure) => void>();
  constructor(private readonly now: () => number = Date.now) {}

  record(f: Omit<PnetFailure, 'atMs'>): void {
    const full = { ...f, atMs: this.now() };
    this.failures++;
    this.lastAtMs = full.atMs;
    this.recent.push(full);
    if (this.recent.length > PNET_RECENT_MAX) this.recent.shift();
    for (const l of this.listeners) l(full);
  }

  onFailure(l: (f: PnetFailure) => void): () => void {
    this.listeners.add(l);
    return () => {
      this.listeners.delete(l);
    };
  }

  stats(): PnetFailureStats {
    return { failures: this.failures, lastAtMs: this.lastAtMs, recent: [...this.recent] };
  }
}

type ProtectorFactory<C> = (components: C) => ConnectionProtector;

/** The protector factory, wrapped so that handshake failures after it reach `counter`. */
export function countPnetFailures<C>(inner: ProtectorFactory<C>, counter: PnetFailureCounter, now: () => number = Date.now): ProtectorFactory<C> {
  return (components) => {
    const protector = inner(components);
    return {
      async protect(conn: MultiaddrConnection, options?: Parameters<ConnectionProtector['protect']>[1]): Promise<MultiaddrConnection> {
        const startedMs = now();
        const abort = conn.abort.bind(conn);
        let counted = false;
        // The transport aborts the raw connection when its upgrade fails (@libp2p/tcp listener and dialer).
        conn.abort = (err: Error): void => {
          if (!counted && now() - startedMs < HANDSHAKE_WINDOW_MS && HANDSHAKE_ERRORS.has(err.name)) {
            counted = true;
            counter.record({ remoteAddr: conn.remoteAddr.toString(), error: `${err.name}: ${err.message}` });
          }
          abort(err);
        };
        return protector.protect(conn, options);
      },
    };
  };
}
