/**
 * Spreads join claims between nodes until consensus owns membership (issue 5 swaps
 * this out): every node keeps the join claims it admitted (store section `invites`)
 * and exchanges them with each connected peer over `/fednode/members/1.0.0`
 * (one length-prefixed CBOR frame each way: the list of claims). Each receiver runs
 * InviteMemberSource.admit() on claims whose signer it does not know yet, so a node
 * admitted by the member it joined through becomes known to all members.
 */
import * as lp from 'it-length-prefixed';
import { decodeCanonical, encodeCanonical } from '../../crypto/cbor.js';
import type { Logger } from '../log.js';
import type { Host, Stream } from '../p2p/host.js';
import type { InviteMemberSource } from '../p2p/members.js';
import { JOIN_KIND } from '../p2p/members.js';
import { decodeEnvelope } from '../../crypto/envelope.js';
import type { Store } from '../store/index.js';

export const MEMBERS_PROTOCOL = '/fednode/members/1.0.0';
/** Claims per frame: one per admitted member; bounded like the member set. */
export const CLAIMS_MAX = 1024;
/** A claim is < 1 KiB; 1024 of them plus CBOR overhead. */
export const CLAIMS_FRAME_MAX_BYTES = 1024 * 1024 + 4096;
/** One exchange must finish quickly on a LAN; a stuck peer is dropped after this. */
export const SYNC_TIMEOUT_MS = 5000;

export interface MemberSyncOptions {
  host: Host;
  members: InviteMemberSource;
  store: Store;
  cluster: string;
  selfId: string;
  logger: Logger;
  /** How often to exchange with each connected peer. */
  intervalMs: number;
}

export interface MemberSync {
  /** Claims known (own first), for status. */
  count(): number;
  /** Record this node's own claim (joined nodes) so it is shared. */
  addOwn(claim: Uint8Array): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

async function readOne(source: AsyncIterable<{ subarray(): Uint8Array }>): Promise<Uint8Array | null> {
  for await (const m of source) return m.subarray();
  return null;
}

export function createMemberSync(o: MemberSyncOptions): MemberSync {
  const log = o.logger.child('members');
  const claims = new Map<string, Uint8Array>(); // peerId -> claim bytes (bounded by CLAIMS_MAX)
  const section = o.store.section('invites');
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  const inFlight = new Set<string>();

  const signerOf = (claim: Uint8Array): string | null => {
    const d = decodeEnvelope(claim, { kinds: [JOIN_KIND], cluster: o.cluster, maxBytes: 8192 });
    return d.ok ? d.envelope.signerId : null;
  };

  const remember = async (peerId: string, claim: Uint8Array): Promise<void> => {
    if (claims.has(peerId) || claims.size >= CLAIMS_MAX) return;
    claims.set(peerId, claim);
    await section.put(`claim:${peerId}`, claim, { sync: true });
  };

  const receive = async (list: unknown, from: string): Promise<void> => {
    if (!Array.isArray(list)) return;
    for (const c of list.slice(0, CLAIMS_MAX)) {
      if (!(c instanceof Uint8Array)) continue;
      const signer = signerOf(c);
      if (signer === null || claims.has(signer)) continue;
      if (o.members.isMember(signer)) {
        await remember(signer, c);
        continue;
      }
      const r = o.members.admit(c);
      if (r.ok) {
        log.info('member admitted by invite', { peerId: r.peerId, inviter: r.inviter, via: from });
        await remember(r.peerId, c);
      } else {
        log.debug('join claim refused', { from, code: r.code, detail: r.detail });
      }
    }
  };

  const frame = (): Uint8Array => encodeCanonical([...claims.values()]);

  const exchange = async (peerId: string): Promise<void> => {
    if (inFlight.has(peerId) || stopped) return;
    inFlight.add(peerId);
    let stream: Stream | null = null;
    try {
      stream = await o.host.dialProtocol(peerId, MEMBERS_PROTOCOL, { signal: AbortSignal.timeout(SYNC_TIMEOUT_MS) });
      await stream.sink(lp.encode([frame()]));
      const reply = await readOne(lp.decode(stream.source, { maxDataLength: CLAIMS_FRAME_MAX_BYTES }));
      if (reply !== null) await receive(decodeCanonical(reply, CLAIMS_FRAME_MAX_BYTES), peerId);
    } catch (e) {
      log.debug('member sync failed', { peerId, err: e });
      stream?.abort(e instanceof Error ? e : new Error(String(e))); // eslint-disable-line no-restricted-syntax -- libp2p's abort takes a plain Error
    } finally {
      inFlight.delete(peerId);
    }
  };

  const tick = (): void => {
    for (const p of o.host.peers()) {
      if (p.connections > 0) void exchange(p.peerId);
    }
  };

  return {
    count: () => claims.size,
    addOwn: async (claim) => {
      await remember(o.selfId, claim);
    },
    async start() {
      for await (const [key, value] of section.entries({ gte: 'claim:', lt: 'claim;' })) {
        const peerId = key.slice('claim:'.length);
        claims.set(peerId, value);
        if (!o.members.isMember(peerId)) o.members.add(peerId); // admitted before this restart (checked then)
      }
      await o.host.handle(
        MEMBERS_PROTOCOL,
        (stream, remote) => {
          void (async () => {
            try {
              const req = await readOne(lp.decode(stream.source, { maxDataLength: CLAIMS_FRAME_MAX_BYTES }));
              const reply = frame();
              await stream.sink(lp.encode([reply]));
              if (req !== null) await receive(decodeCanonical(req, CLAIMS_FRAME_MAX_BYTES), remote);
            } catch (e) {
              log.debug('member sync (inbound) failed', { peerId: remote, err: e });
              stream.abort(e instanceof Error ? e : new Error(String(e))); // eslint-disable-line no-restricted-syntax -- libp2p's abort takes a plain Error
            }
          })();
        },
        { maxInboundStreams: 4 },
      );
      timer = setInterval(tick, o.intervalMs);
      timer.unref();
      setTimeout(tick, 50).unref();
    },
    async stop() {
      stopped = true;
      if (timer !== null) clearInterval(timer);
      await o.host.unhandle(MEMBERS_PROTOCOL).catch(() => undefined);
    },
  };
}
