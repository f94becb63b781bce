/**
 * Production binding of the driver's transport (ports.ts ConsensusTransport) to the libp2p host:
 * envelopes signed with the node's identity, direct channels and gossip on the consensus topic,
 * catch-up over `/fednode/consensus/sync/1.0.0` (sync.ts). The only consensus file that knows Host.
 */
import { createEnvelope } from '../../crypto/envelope.js';
import type { Identity } from '../../crypto/keys.js';
import type { Host } from '../p2p/host.js';
import type { Clock, ConsensusTransport, InboundEnvelope, Sealed } from './ports.js';
import { requestSync, serveSync, SYNC_MAX_INBOUND_STREAMS, SYNC_PROTOCOL } from './sync.js';

interface SealedBytes extends Sealed {
  readonly bytes: Uint8Array;
}

export interface Libp2pTransportOptions {
  readonly host: Host;
  readonly identity: Identity;
  readonly cluster: string;
  readonly now: Clock;
  /** Server side timeout of one sync exchange. */
  readonly syncTimeoutMs: number;
}

export function libp2pTransport(o: Libp2pTransportOptions): ConsensusTransport {
  const { host } = o;
  // Envelope sequence numbers start at the clock (ms) so they keep rising across restarts.
  let seq = Math.max(0, Math.floor(o.now()));
  let serving = false;
  const unsubs: (() => void)[] = [];
  return {
    seal(kind, body): SealedBytes {
      return { kind, bytes: createEnvelope(o.identity, { kind, cluster: o.cluster, seq: seq++, time: Math.floor(o.now()), body }) };
    },
    sendDirect(m, to) {
      return host.sendDirect('consensus', (m as SealedBytes).bytes, to);
    },
    async publish(m) {
      await host.publish('consensus', (m as SealedBytes).bytes);
    },
    directPeers: () => host.directPeers('consensus'),
    connectedPeers: () => host.peers().filter((p) => p.connections > 0).map((p) => p.peerId),
    onEnvelope(handler: (e: InboundEnvelope) => void) {
      const off = host.onMessage('consensus', (d) => handler({ signerId: d.envelope.signerId, kind: d.envelope.kind, body: d.envelope.body }));
      unsubs.push(off);
      return off;
    },
    async serveSync(answer, served) {
      serving = true;
      await host.handle(
        SYNC_PROTOCOL,
        (stream, remote) =>
          void serveSync(stream, o.syncTimeoutMs, answer).then((ok) => served(ok, remote)),
        { maxInboundStreams: SYNC_MAX_INBOUND_STREAMS },
      );
    },
    requestSync: (peer, req, timeoutMs) => requestSync(host, peer, req, timeoutMs),
    async close() {
      for (const off of unsubs.splice(0)) off();
      if (serving) await host.unhandle(SYNC_PROTOCOL).catch(() => undefined);
      serving = false;
    },
  };
}
