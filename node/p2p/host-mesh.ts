/**
 * The host's (host.ts) point-to-point side over its libp2p node: the direct channels
 * (direct.ts) and the mesh keeper (mesh.ts: bootstrap peers and every member, dialled with
 * capped backoff from the address book), and the libp2p events and membership changes that
 * drive them (connect, disconnect, identify, peer store updates, members added).
 */
import type { GossipSub } from '@chainsafe/libp2p-gossipsub';
import type { PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import type { Logger } from '../log.js';
import type { AddressBook } from './addr-book.js';
import { DirectChannels } from './direct.js';
import type { GossipTopics } from './gossip.js';
import { GRAYLIST_THRESHOLD } from './host-gossip.js';
import type { HostNode } from './host-libp2p.js';
import type { PairGate } from './host-pairs.js';
import type { HostInit } from './host.js';
import type { MemberSource } from './members.js';
import { MeshKeeper } from './mesh.js';
import type { MeshKeeperInit } from './mesh.js';

/** Direct channels (consensus messages point to point) over the node's open connections and handlers. */
export function createDirect(libp2p: HostNode, pubsub: GossipSub, a: { topics: GossipTopics; members: MemberSource; now: () => number; init: HostInit; log: Logger }): DirectChannels {
  return new DirectChannels({
    topics: a.topics,
    members: a.members,
    now: a.now,
    limits: a.init.direct,
    logger: a.log.child('direct'),
    transport: {
      handle: (protocol, handler, opts) => libp2p.handle(protocol, ({ stream, connection }) => handler(stream, connection.remotePeer.toString()), opts),
      unhandle: (protocol) => libp2p.unhandle(protocol),
      openStream: (peerId, protocol) => {
        const conn = libp2p.getConnections(peerIdFromString(peerId)).find((c) => c.status === 'open');
        // Full negotiation (one round trip, once per channel): a peer without the protocol fails
        // here, before any frame is counted as sent, so its messages keep going by gossip.
        return conn === undefined ? null : conn.newStream(protocol);
      },
      acceptable: (peerId) => pubsub.getScore(peerId) > GRAYLIST_THRESHOLD,
    },
  });
}

export interface KeeperParts {
  readonly init: HostInit;
  /** This node's peer id (the identity's). */
  readonly self: string;
  readonly members: MemberSource;
  readonly bootstrap: ReadonlyMap<string, readonly string[]>;
  readonly book: AddressBook;
  readonly backoff: MeshKeeperInit['backoff'];
  readonly now: () => number;
  readonly log: Logger;
}

/** The mesh: every member connected to every member (bounded; mesh.ts). */
export function createKeeper(libp2p: HostNode, gate: PairGate, direct: DirectChannels, a: KeeperParts): MeshKeeper {
  const { init } = a;
  return new MeshKeeper({
    self: a.self,
    members: a.members,
    ...(init.validators !== undefined ? { validators: init.validators } : {}),
    bootstrap: a.bootstrap,
    book: a.book,
    backoff: a.backoff,
    ...init.mesh,
    now: a.now,
    rand: Math.random,
    logger: a.log.child('mesh'),
    transport: {
      dial: async (peer, addrs) => {
        await libp2p.dial(addrs.map((m) => multiaddr(`${m}/p2p/${peer}`)));
      },
      isConnected: (peer) => gate.hasOpenConnection(peerIdFromString(peer)),
    },
    // A direct channel that ended while the peer stayed connected (a duplicate connection
    // closed under it, an open that failed) is reopened here, not only at the next send.
    onConnectedTick: (peer) => direct.connected(peer),
  });
}

export interface MeshEvents {
  /** libp2p's peer events to the keeper and the channels. */
  listen(): void;
  unlisten(): void;
  /** Members added: their addresses from the peer store. */
  watchMembers(): void;
  unwatchMembers(): void;
}

/** The events that drive the keeper and the direct channels. */
export function meshEvents(libp2p: HostNode, direct: DirectChannels, keeper: MeshKeeper, members: MemberSource): MeshEvents {
  const onDisconnect = (evt: CustomEvent<PeerId>): void => {
    const id = evt.detail.toString();
    direct.closePeer(id);
    keeper.disconnected(id);
  };
  const onConnect = (evt: CustomEvent<PeerId>): void => {
    const id = evt.detail.toString();
    keeper.connected(id);
    direct.connected(id);
  };
  const onIdentify = (evt: CustomEvent<{ peerId: PeerId; listenAddrs: Array<{ toString(): string }> }>): void => {
    keeper.learn(evt.detail.peerId.toString(), evt.detail.listenAddrs.map((m) => m.toString()), 'identify');
  };
  // identify usually runs before a joiner's member.add is decided, when its addresses are not
  // yet kept (members only): a peer that becomes a member gets them from the peer store then.
  let offMembers: (() => void) | null = null;
  const onMembersChanged = (ev: { added: readonly string[] }): void => {
    for (const id of ev.added) {
      libp2p.peerStore.get(peerIdFromString(id)).then(
        (p) => void keeper.learn(id, p.addresses.map((m) => m.multiaddr.toString()), 'peer-store'),
        () => undefined, // not in the peer store: its advert will say
      );
    }
  };
  const onPeerUpdate = (evt: CustomEvent<{ peer: { id: PeerId; addresses: Array<{ multiaddr: { toString(): string } }> } }>): void => {
    const p = evt.detail.peer;
    if (p.addresses.length > 0) keeper.learn(p.id.toString(), p.addresses.map((m) => m.multiaddr.toString()), 'peer-store');
  };
  return {
    listen() {
      libp2p.addEventListener('peer:disconnect', onDisconnect);
      libp2p.addEventListener('peer:connect', onConnect);
      libp2p.addEventListener('peer:identify', onIdentify);
      libp2p.addEventListener('peer:update', onPeerUpdate);
    },
    unlisten() {
      libp2p.removeEventListener('peer:disconnect', onDisconnect);
      libp2p.removeEventListener('peer:connect', onConnect);
      libp2p.removeEventListener('peer:identify', onIdentify);
      libp2p.removeEventListener('peer:update', onPeerUpdate);
    },
    watchMembers() {
      offMembers = members.onChange(onMembersChanged);
    },
    unwatchMembers() {
      offMembers?.();
    },
  };
}
