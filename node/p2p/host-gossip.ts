/**
 * gossipsub as the host (host.ts) runs it: StrictNoSign, msgId = BLAKE3(topic || data),
 * bounded RPC decode and buffers, peer scoring (member bonus / non-member penalty minus the
 * direct channels' penalty, a cost per invalid message on every topic) and the per-topic
 * validators of gossip.ts mapped to libp2p's verdicts.
 */
import type { GossipSub, GossipsubOpts } from '@chainsafe/libp2p-gossipsub';
import { createPeerScoreParams, createTopicScoreParams } from '@chainsafe/libp2p-gossipsub/score';
import { StrictNoSign, TopicValidatorResult } from '@libp2p/interface';
import type { Message } from '@libp2p/interface';
import { blake3 } from '../../crypto/blake3.js';
import type { GossipTopics, TopicName, Verdict } from './gossip.js';
import type { MemberSource } from './members.js';

/** Maximum gossip RPC frame (bytes): the largest topic message (256 KiB) plus protobuf/control overhead. */
const GOSSIP_RPC_MAX_BYTES = 512 * 1024;
/** Outbound buffer per peer stream: 8 MiB = 32 max-size messages queued before gossipsub drops the peer's writes. */
const GOSSIP_OUTBOUND_BUFFER_BYTES = 8 * 1024 * 1024;
/**
 * Messages below this size are not announced with IDONTWANT (gossipsub's default is 512 B).
 * Members connect to every other member and publish to all of them (flood publish), so a
 * relay's copy of a small message is usually on the wire before the receiver's IDONTWANT
 * reaches the relay: for adverts, statuses and votes (0.3-2 KiB) the IDONTWANT was two extra
 * RPCs per message that saved nothing (issue 15, idle cost). Large ones (proposals with op
 * batches, up to 256 KiB) keep it: there a skipped duplicate saves more than the control frame.
 */
export const IDONTWANT_MIN_BYTES = 16 * 1024;
/** gossipsub graylist score: below it a peer's RPCs are ignored, and it may not open direct channels. */
export const GRAYLIST_THRESHOLD = -80;

/** gossipsub message id: BLAKE3(topic || data). With StrictNoSign there is no seqno; identical bytes are the same message. */
export function messageId(topic: string, data: Uint8Array): Uint8Array {
  const t = new TextEncoder().encode(topic);
  const buf = new Uint8Array(t.length + data.length);
  buf.set(t, 0);
  buf.set(data, t.length);
  return blake3(buf);
}

/**
 * gossipsub's options. `directPenalty`: the decaying penalty of a peer's rejected
 * direct-channel frames (direct.ts), subtracted from its score.
 */
export function gossipsubOptions(topicNames: ReadonlyMap<string, TopicName>, members: MemberSource, directPenalty: (peer: string) => number): Partial<GossipsubOpts> {
  // Member bonus / non-member penalty (P5, app-specific score). Non-members sit below
  // gossipThreshold (no IHAVE/IWANT with them) and below 0 (pruned from meshes); each
  // rejected message adds P4 (invalid deliveries, squared) until they are graylisted.
  const scoreParams = createPeerScoreParams({
    // minus the decaying penalty for rejected direct-channel frames (direct.ts)
    appSpecificScore: (p) => (members.isMember(p) ? 10 : -30) - directPenalty(p),
    appSpecificWeight: 1,
    // Home-lab nodes often share one public IP (NAT) or, in tests, 127.0.0.1: no colocation penalty.
    IPColocationFactorWeight: 0,
    topics: Object.fromEntries(
      [...topicNames.keys()].map((t) => [
        t,
        createTopicScoreParams({
          topicWeight: 1,
          // P3 (mesh delivery deficit) off: adverts come every 2 s, far below any useful rate threshold.
          meshMessageDeliveriesWeight: 0,
          // P4: each invalid message costs 10 * count^2, decaying by half each decay interval.
          invalidMessageDeliveriesWeight: -10,
          invalidMessageDeliveriesDecay: 0.5,
        }),
      ]),
    ),
  });
  return {
    globalSignaturePolicy: StrictNoSign,
    msgIdFn: (msg: Message) => messageId(msg.topic, msg.data),
    allowPublishToZeroTopicPeers: true,
    ignoreDuplicatePublishError: true,
    emitSelf: false,
    allowedTopics: [...topicNames.keys()],
    maxInboundDataLength: GOSSIP_RPC_MAX_BYTES,
    maxOutboundBufferSize: GOSSIP_OUTBOUND_BUFFER_BYTES,
    // Bounded protobuf decode per RPC: more than any honest peer sends in one frame.
    decodeRpcLimits: {
      maxSubscriptions: 16,
      maxMessages: 256,
      maxIhaveMessageIDs: 1024,
      maxIwantMessageIDs: 1024,
      maxIdontwantMessageIDs: 1024,
      maxControlMessages: 256,
      maxPeerInfos: 16,
    },
    // Inbound/outbound gossip streams per connection: one each is the protocol; 4 tolerates reconnect overlap.
    maxInboundStreams: 4,
    maxOutboundStreams: 4,
    scoreParams,
    scoreThresholds: { gossipThreshold: -10, publishThreshold: -50, graylistThreshold: GRAYLIST_THRESHOLD, acceptPXThreshold: 100, opportunisticGraftThreshold: 5 },
    doPX: false,
    idontwantMinDataSize: IDONTWANT_MIN_BYTES,
  };
}

/** Every topic's validator (gossip.ts, cheapest check first) as gossipsub's. */
export function installValidators(pubsub: GossipSub, topics: GossipTopics, topicNames: ReadonlyMap<string, TopicName>): void {
  for (const [t, name] of topicNames) {
    pubsub.topicValidators.set(t, (from, msg) => toResult(topics.validate(name, msg.data, from.toString())));
  }
}

function toResult(v: Verdict): TopicValidatorResult {
  switch (v) {
    case 'accept':
      return TopicValidatorResult.Accept;
    case 'ignore':
      return TopicValidatorResult.Ignore;
    case 'reject':
      return TopicValidatorResult.Reject;
  }
}
