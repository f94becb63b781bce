/**
 * Adverts on the wire: a signed envelope of kind 'advert' (crypto/envelope.ts) whose
 * body is an AdvertBody. `decodeAdvertEnvelope` does the cheap checks (size, frame,
 * kind, cluster, body schema) without the signature, so a gossip validator can check
 * membership and freshness before paying for Ed25519; `verifyAdvert` or
 * `openAdvertEnvelope` add the signature check.
 */
import { createEnvelope, decodeEnvelope, verifyDecoded, type DecodedEnvelope, type EnvelopeErrorCode } from '../../crypto/envelope.js';
import type { Identity } from '../../crypto/keys.js';
import type { VerifiedCache } from '../../crypto/verify-cache.js';
import { encodeAdvertBody, parseAdvertBody, type AdvertBody, type AdvertErrorCode } from './advert.js';

export const ADVERT_KIND = 'advert';
/** A body at every ADVERT_LIMITS bound encodes to ~13 KiB (a typical one ~400 B; test/unit/adverts/advert.test.ts checks it);
 *  32 KiB leaves room for that and refuses anything bigger before parsing. */
export const ADVERT_MAX_BYTES = 32 * 1024;

export interface ReceivedAdvert {
  /** PeerId of the signer (the advertising node). */
  readonly peerId: string;
  readonly seq: number;
  /** Signer's clock, unix ms (not trusted for age: the peer table uses receive time). */
  readonly timeMs: number;
  readonly body: AdvertBody;
}

export type AdvertEnvelopeErrorCode = EnvelopeErrorCode | 'bad-body';

export type AdvertDecode =
  | { readonly ok: true; readonly advert: ReceivedAdvert; readonly decoded: DecodedEnvelope }
  | { readonly ok: false; readonly code: AdvertEnvelopeErrorCode; readonly detail: string; readonly bodyError?: AdvertErrorCode };

export interface CreateAdvertFields {
  readonly cluster: string;
  readonly seq: number;
  readonly timeMs: number;
  readonly body: AdvertBody;
}

/** Sign this node's advert. Throws AdvertError (invalid body) or CryptoError (invalid seq/time/cluster). */
export function createAdvertEnvelope(id: Identity, f: CreateAdvertFields): Uint8Array {
  return createEnvelope(id, { kind: ADVERT_KIND, cluster: f.cluster, seq: f.seq, time: f.timeMs, body: encodeAdvertBody(f.body) });
}

/** Cheap checks only (no signature). Never throws. */
export function decodeAdvertEnvelope(bytes: Uint8Array, opts: { readonly cluster: string; readonly maxBytes?: number }): AdvertDecode {
  const d = decodeEnvelope(bytes, { kinds: [ADVERT_KIND], cluster: opts.cluster, maxBytes: opts.maxBytes ?? ADVERT_MAX_BYTES });
  if (!d.ok) return { ok: false, code: d.code, detail: d.detail };
  const b = parseAdvertBody(d.envelope.body);
  if (!b.ok) return { ok: false, code: 'bad-body', detail: `${b.field}: ${b.detail}`, bodyError: b.code };
  return { ok: true, advert: { peerId: d.envelope.signerId, seq: d.envelope.seq, timeMs: d.envelope.time, body: b.body }, decoded: d };
}

/** Signature check of a decoded advert (cached by digest when a cache is given). */
export function verifyAdvert(d: AdvertDecode & { ok: true }, cache?: VerifiedCache): boolean {
  return verifyDecoded(d.decoded, cache);
}

/** decode + verify: 'bad-signature' when the signature does not verify. Never throws. */
export function openAdvertEnvelope(bytes: Uint8Array, opts: { readonly cluster: string; readonly maxBytes?: number; readonly cache?: VerifiedCache }): AdvertDecode {
  const d = decodeAdvertEnvelope(bytes, opts);
  if (!d.ok) return d;
  if (!verifyAdvert(d, opts.cache)) return { ok: false, code: 'bad-signature', detail: `signature by ${d.advert.peerId} does not verify` };
  return d;
}
