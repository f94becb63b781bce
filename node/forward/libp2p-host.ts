/**
 * Adapts a plain libp2p 2.x node to ForwardHost (tests and benchmarks create their own
 * nodes; the runtime passes node/p2p's Host, which already has this shape).
 */
import { peerIdFromString } from '@libp2p/peer-id';
import type { Libp2p } from '@libp2p/interface';
import type { ForwardHost } from './server.js';

export function forwardHostFromLibp2p(node: Libp2p): ForwardHost {
  return {
    async handle(protocol, handler, opts) {
      await node.handle(protocol, ({ stream, connection }) => handler(stream, connection.remotePeer.toString()), {
        maxInboundStreams: opts?.maxInboundStreams ?? 128,
        ...(opts?.maxOutboundStreams === undefined ? {} : { maxOutboundStreams: opts.maxOutboundStreams }),
        runOnLimitedConnection: false,
      });
    },
    dialProtocol(peerId, protocol, opts) {
      return node.dialProtocol(peerIdFromString(peerId), protocol, { ...(opts?.signal === undefined ? {} : { signal: opts.signal }), negotiateFully: opts?.negotiateFully ?? true, ...(opts?.maxOutboundStreams === undefined ? {} : { maxOutboundStreams: opts.maxOutboundStreams }) });
    },
    unhandle(protocol) {
      return node.unhandle(protocol);
    },
  };
}
