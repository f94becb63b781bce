/**
 * Carries join claims to the members: over `/fednode/members/1.0.0` each pair of connected
 * nodes swaps one length-prefixed CBOR frame each way, the list of claims it holds (its own,
 * if it joined by invite, and the claims of not-yet-admitted nodes it has seen, so a claim
 * reaches members the joiner is not connected to). Each received claim goes to `onClaim`
 * (node/runtime/admission.ts), which checks it and gets the joiner admitted by consensus
 * (`member.add`). Membership itself is the decided log's; nothing here grants it.
 *
 * Idle cost (issue 15): each tick, a node exchanges only with the peers it has something to tell
 * (its own claim, relayed claims, a refusal of that peer's claim); with nothing it opens no
 * stream. It used to exchange with every peer every tick, so a settled cluster (no joiner
 * pending) opened 2 streams per peer pair per period for empty frames, most of an idle node's
 * socket writes. Nothing is lost: an exchange started from an empty frame could only bring this
 * node the other side's claims, and that side, holding them, starts the exchange itself (the
 * reply carries this node's claims and refusal back).
 */
import { request, respond } from '../../base/reqresp.js';
import { decodeCanonical, encodeCanonical } from '../../crypto/cbor.js';
import type { Logger } from '../log.js';
import type { Host, Stream } from '../p2p/host.js';
import { JOIN_KIND } from '../p2p/members.js';
import { decodeEnvelope } from '../../crypto/envelope.js';
import type { Store } from '../store/index.js';

export const MEMBERS_PROTOCOL = '/fednode/members/1.0.0';
/** Claims per frame: pending joiners are few; bounded like the member set. */
export const CLAIMS_MAX = 1024;
/** A claim is < 1 KiB; 1024 of them plus CBOR overhead. */
export const CLAIMS_FRAME_MAX_BYTES = 1024 * 1024 + 4096;
/** One exchange must finish quickly on a LAN; a stuck peer is dropped after this. */
export const SYNC_TIMEOUT_MS = 5000;
/** A join claim is a few hundred bytes (two envelopes); 8 KiB bounds the decode. */
const CLAIM_MAX_BYTES = 8192;
/** Relayed claims must fit one frame with room for our own claim. */
const RELAYED_MAX_BYTES = CLAIMS_FRAME_MAX_BYTES - 2 * CLAIM_MAX_BYTES;
const OWN_CLAIM_KEY = 'own-claim';

export interface MemberSyncOptions {
  host: Host;
  store: Store;
  cluster: string;
  selfId: string;
  logger: Logger;
  /** How often to exchange with each connected peer. */
  intervalMs: number;
  /** Decided membership: claims of members are neither relayed nor handed on. */
  isMember(peerId: string): boolean;
  /**
   * A claim of a non-member, received from `from` (checked there; must not throw). Resolves
   * true when the claim is valid, so worth relaying to other members.
   */
  onClaim(claim: Uint8Array, from: string): Promise<boolean>;
  /**
   * Why this node refused `peer`'s claim (used or expired invite, inviter not a member), told to
   * that peer in the frame sent to it, as a map entry `{refused: {code, reason}}` after the
   * claims (older nodes skip entries that are not claims). @default none
   */
  refusalFor?(peer: string): { code: string; reason: string } | null;
  /** A member told this node it refused our own claim. @default ignored */
  onRefused?(byPeer: string, r: { code: string; reason: string }): void;
}

export interface MemberSync {
  /** Claims held (own + relayed), for status. */
  count(): number;
  /** Record this node's own claim (joined nodes) so it is shared; persisted for restarts. */
  addOwn(claim: Uint8Array): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

function isRefusal(x: unknown): x is { refused: { code: string; reason: string } } {
  if (typeof x !== 'object' || x === null || x instanceof Uint8Array || Array.isArray(x)) return false;
  const r = (x as { refused?: unknown }).refused;
  return typeof r === 'object' && r !== null && typeof (r as { code?: unknown }).code === 'string' && typeof (r as { reason?: unknown }).reason === 'string';
}

/** The frame entry telling a peer why its claim was refused (bounded strings), or none. */
function refusalItem(r: { code: string; reason: string } | null): Array<{ refused: { code: string; reason: string } }> {
  return r === null ? [] : [{ refused: { code: r.code.slice(0, 64), reason: r.reason.slice(0, 300) } }];
}

/** Other joiners' valid claims this node carries on: signer peer id -> claim bytes, bounded by CLAIMS_MAX and RELAYED_MAX_BYTES. */
class RelayedClaims {
  private readonly claims = new Map<string, Uint8Array>();
  private bytes = 0;

  get size(): number {
    return this.claims.size;
  }

  values(): IterableIterator<Uint8Array> {
    return this.claims.values();
  }

  /** Carries `claim` on unless the signer's is carried already or a bound would be passed. */
  offer(signer: string, claim: Uint8Array): void {
    if (this.claims.has(signer) || this.claims.size >= CLAIMS_MAX || this.bytes + claim.length > RELAYED_MAX_BYTES) return;
    this.claims.set(signer, claim);
    this.bytes += claim.length;
  }

  drop(signer: string): void {
    const c = this.claims.get(signer);
    if (c === undefined) return;
    this.claims.delete(signer);
    this.bytes -= c.length;
  }

  /** Drops the claims of joiners that are members now (nothing left to carry). */
  dropMembers(isMember: (peer: string) => boolean): void {
    for (const p of [...this.claims.keys()]) if (isMember(p)) this.drop(p);
  }
}

export function createMemberSync(o: MemberSyncOptions): MemberSync {
  const log = o.logger.child('members');
  const relayed = new RelayedClaims();
  let own: Uint8Array | null = null;
  const section = o.store.section('invites');
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  const inFlight = new Set<string>();

  const signerOf = (claim: Uint8Array): string | null => {
    const d = decodeEnvelope(claim, { kinds: [JOIN_KIND], cluster: o.cluster, maxBytes: CLAIM_MAX_BYTES });
    return d.ok ? d.envelope.signerId : null;
  };

  const receive = async (list: unknown, from: string): Promise<void> => {
    if (!Array.isArray(list)) return;
    for (const c of list.slice(0, CLAIMS_MAX + 1)) {
      if (isRefusal(c)) {
        // Only a member's word counts, and only while we wait for admission.
        if (own !== null && o.isMember(from) && !o.isMember(o.selfId)) o.onRefused?.(from, c.refused);
        continue;
      }
      if (!(c instanceof Uint8Array) || c.length > CLAIM_MAX_BYTES) continue;
      const signer = signerOf(c);
      if (signer === null || signer === o.selfId || o.isMember(signer)) continue;
      // Relay only claims that check out (a forged or expired one would crowd out real ones).
      if (await o.onClaim(c, from)) relayed.offer(signer, c);
      else relayed.drop(signer);
    }
  };

  /** What this node has to tell `to`: its own claim, the relayed ones and a refusal of `to`'s claim. */
  const items = (to: string): unknown[] => {
    relayed.dropMembers((p) => o.isMember(p)); // admitted: nothing left to carry
    if (own !== null && o.isMember(o.selfId)) own = null; // our own member.add is decided
    return [...(own !== null ? [own] : []), ...relayed.values(), ...refusalItem(o.refusalFor?.(to) ?? null)];
  };
  const frame = (to: string): Uint8Array => encodeCanonical(items(to));

  const exchange = async (peerId: string): Promise<void> => {
    if (inFlight.has(peerId) || stopped) return;
    inFlight.add(peerId);
    let stream: Stream | null = null;
    try {
      stream = await o.host.dialProtocol(peerId, MEMBERS_PROTOCOL, { signal: AbortSignal.timeout(SYNC_TIMEOUT_MS) });
      // base/reqresp.ts: one bounded frame each way, the whole exchange under the timeout (aborts the stream on failure)
      const reply = await request(stream, frame(peerId), { maxInboundBytes: CLAIMS_FRAME_MAX_BYTES, timeoutMs: SYNC_TIMEOUT_MS, what: `${MEMBERS_PROTOCOL} to ${peerId}` });
      await receive(decodeCanonical(reply, CLAIMS_FRAME_MAX_BYTES), peerId);
    } catch (e) {
      log.debug('member sync failed', { peerId, err: e });
    } finally {
      inFlight.delete(peerId);
    }
  };

  // Only a node with something to tell opens a stream (see the file comment: idle cost).
  const tick = (): void => {
    for (const p of o.host.peers()) {
      if (p.connections > 0 && items(p.peerId).length > 0) void exchange(p.peerId);
    }
  };

  return {
    count: () => relayed.size + (own !== null ? 1 : 0),
    addOwn: async (claim) => {
      own = claim;
      await section.put(OWN_CLAIM_KEY, claim, { sync: true });
    },
    async start() {
      own ??= (await section.get(OWN_CLAIM_KEY)) ?? null;
      await o.host.handle(
        MEMBERS_PROTOCOL,
        (stream, remote) => {
          void (async () => {
            const ok = await respond(stream, { maxInboundBytes: CLAIMS_FRAME_MAX_BYTES, timeoutMs: SYNC_TIMEOUT_MS, what: MEMBERS_PROTOCOL }, async (req) => {
              if (req === null) return null; // no request frame: refuse
              try {
                await receive(decodeCanonical(req, CLAIMS_FRAME_MAX_BYTES), remote);
              } catch (e) {
                log.debug('member sync (inbound) claims rejected', { peerId: remote, err: e });
              }
              // The claims are checked first, so the reply can already say why one of the remote's was refused.
              return frame(remote);
            });
            if (!ok) log.debug('member sync (inbound) failed', { peerId: remote });
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
