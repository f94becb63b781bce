/**
 * One connection per peer pair (host.ts), decided the same way on both sides: the preferred
 * connection is the one initiated by the lower peer id. The gater refuses a non-preferred
 * connection while an existing one answers a liveness ping; duplicates that got through are
 * closed on connection:open (with a check that gossip survived); after an mDNS hit the lower
 * id dials at once and the higher one only after a grace period.
 */
import type { Connection, ConnectionGater, PeerId } from '@libp2p/interface';
import type { Logger } from '../log.js';
import { P2pError } from './errors.js';
import type { HostNode } from './host-libp2p.js';

/**
 * A non-preferred duplicate is refused only if the existing connection answers a ping within
 * this time: a peer restarted (kill -9, power loss) dials us before our old connection to it
 * has noticed it is dead, and refusing it would leave the pair unconnected until libp2p's
 * connection monitor (10 s ping) drops the dead one. 2 s is many LAN round trips.
 */
const LIVENESS_PING_MS = 2_000;
/** The higher peer id waits this long for the lower one to dial after an mDNS hit (both would dial otherwise). */
const MDNS_DIAL_GRACE_MS = 1_500;
/** After closing duplicates: identify + gossipsub stream setup take a few RTTs. */
const GOSSIP_STREAM_CHECK_MS = 2_000;

/** Run `fn` after `ms` if the host still runs then (host.ts clears these timers at stop). */
export type Later = (ms: number, fn: () => void) => void;

/** Which connection of a pair stays, and the gater that applies it before identify or gossipsub see one. */
export class PairGate {
  /** The libp2p node, set once it exists (the gater is one of its options; connections only come after start). */
  node: HostNode | null = null;

  constructor(
    private readonly selfId: string,
    private readonly log: Logger,
  ) {}

  hasOpenConnection(peer: PeerId): boolean {
    return this.node !== null && this.node.getConnections(peer).some((c) => c.status === 'open');
  }

  /** Is a connection with this direction the pair's preferred one (initiated by the lower peer id)? */
  preferred(peer: PeerId, direction: 'inbound' | 'outbound'): boolean {
    const initiator = direction === 'outbound' ? this.selfId : peer.toString();
    return initiator === (this.selfId < peer.toString() ? this.selfId : peer.toString());
  }

  /**
   * A non-preferred connection is refused once any connection is up; a preferred one is
   * always let in and displaces a non-preferred one (connection:open).
   */
  gater(): ConnectionGater {
    return {
      denyInboundUpgradedConnection: async (peer) => !this.preferred(peer, 'inbound') && (await this.existingAlive(peer)),
      denyOutboundUpgradedConnection: async (peer) => !this.preferred(peer, 'outbound') && (await this.existingAlive(peer)),
    };
  }

  /** Is there an open connection to `peer` that answers a ping? A dead one is closed here (see LIVENESS_PING_MS). */
  private async existingAlive(peer: PeerId): Promise<boolean> {
    const libp2p = this.node;
    if (libp2p === null || !this.hasOpenConnection(peer)) return false;
    try {
      await libp2p.services.ping.ping(peer, { signal: AbortSignal.timeout(LIVENESS_PING_MS) });
      return true;
    } catch (e) {
      this.log.info('existing connection did not answer a ping; taking the new one', { peer: peer.toString(), err: e instanceof Error ? e.message : String(e) });
      for (const c of libp2p.getConnections(peer)) c.abort(new P2pError('ERR_PEER_UNRESPONSIVE', 'connection did not answer a liveness ping', { peer: peer.toString() }));
      return false;
    }
  }
}

/** The host's libp2p listeners of the pair rules: duplicate connections closed, mDNS hits dialled by one side. */
export function pairListeners(libp2p: HostNode, gate: PairGate, later: Later, log: Logger): { listen(): void; unlisten(): void } {
  const selfId = libp2p.peerId.toString();
  // Both sides keep the preferred connection (oldest among equals) and close the rest.
  // Closing a connection that gossipsub already had streams on would leave it with a
  // dead stream (it only resets on peer:disconnect), so a check runs shortly after:
  // if the surviving connection carries no outbound gossip stream, hang up and let the
  // reconnect logic redial once.
  const onConnectionOpen = (evt: CustomEvent<Connection>): void => {
    const peer = evt.detail.remotePeer;
    const open = libp2p.getConnections(peer).filter((c) => c.status === 'open');
    if (open.length < 2) return;
    // Among equally preferred ones the NEWEST stays: an older one may be from before the peer restarted.
    open.sort((a, b) => Number(gate.preferred(peer, b.direction)) - Number(gate.preferred(peer, a.direction)) || b.timeline.open - a.timeline.open);
    for (const extra of open.slice(1)) {
      log.debug('closing duplicate connection', { peer: peer.toString(), direction: extra.direction });
      extra.close().catch(() => undefined);
    }
    later(GOSSIP_STREAM_CHECK_MS, () => {
      const conns = libp2p.getConnections(peer).filter((c) => c.status === 'open');
      if (conns.length !== 1) return;
      if (conns[0]!.streams.some((st) => st.direction === 'outbound' && st.protocol?.startsWith('/meshsub/') === true)) return;
      log.info('gossip stream lost with a duplicate connection; reconnecting', { peer: peer.toString() });
      libp2p.hangUp(peer).catch(() => undefined);
    });
  };
  const dialPeer = (peer: PeerId, why: string): Promise<boolean> =>
    libp2p.dial(peer).then(
      () => true,
      (err: unknown) => {
        log.debug('dial failed', { peer: peer.toString(), why, err: err instanceof Error ? err.message : String(err) });
        return false;
      },
    );
  const onDiscovery = (evt: CustomEvent<{ id: PeerId }>): void => {
    const peer = evt.detail.id;
    const id = peer.toString();
    if (id === selfId || gate.hasOpenConnection(peer)) return;
    // Both sides hear each other's mDNS answer: the lower id dials now, the higher only
    // if still unconnected after a grace period (so normally exactly one dial happens).
    if (selfId < id) void dialPeer(peer, 'discovery');
    else later(MDNS_DIAL_GRACE_MS, () => void (gate.hasOpenConnection(peer) ? undefined : dialPeer(peer, 'discovery-late')));
  };
  return {
    listen() {
      libp2p.addEventListener('connection:open', onConnectionOpen);
      libp2p.addEventListener('peer:discovery', onDiscovery);
    },
    unlisten() {
      libp2p.removeEventListener('connection:open', onConnectionOpen);
      libp2p.removeEventListener('peer:discovery', onDiscovery);
    },
  };
}
