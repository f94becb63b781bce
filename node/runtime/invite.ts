/**
 * Invite tokens: what `fednode invite` prints and `fednode join <token>` reads.
 *
 * token = base64url(envelope kind 'invite-token', signed by the issuing member) with body
 *   { invite, secret, psk, bootstrap, genesis, expires }
 * where `invite` is node/p2p/members.ts's admission invite (kind 'invite', naming the
 * BLAKE3 hash of the one-time `secret`), so the joining node can sign a `join` claim.
 * Members receive the claim over `/fednode/members/1.0.0` (member-sync.ts); admission.ts
 * checks it (invite signature, expiry, secret) and proposes a `member.add` carrying the
 * invite's digest, which the registry accepts once (consensus/registry.ts: used invites).
 * The token is a bearer secret (it carries the cluster's pre-shared key): share it like a
 * password.
 */
import { randomBytes } from 'node:crypto';
import { decodeCanonical, expectRecord } from '../../crypto/cbor.js';
import { createEnvelope, openEnvelope } from '../../crypto/envelope.js';
import type { Identity } from '../../crypto/keys.js';
import { createInvite, INVITE_TTL_MAX_MS } from '../p2p/members.js';
import type { GenesisMember } from '../datadir.js';
import { clusterIdPattern, PSK_BYTES } from '../datadir.js';
import { RuntimeError } from './errors.js';

export const INVITE_TOKEN_KIND = 'invite-token';
/** A token is ~1-2 KiB (PSK, a few addresses, the genesis list); 16 KiB bounds a pasted blob. */
export const INVITE_TOKEN_MAX_CHARS = 16 * 1024;
/** Bootstrap addresses carried (a node listens on a handful of interfaces). */
export const INVITE_BOOTSTRAP_MAX = 16;
/** Genesis members carried; same bound as the cluster file. */
export const INVITE_GENESIS_MAX = 1024;
export const INVITE_TTL_DEFAULT_MS = 3600_000;
export { INVITE_TTL_MAX_MS };
const SECRET_BYTES = 32;

export interface InviteTokenInput {
  cluster: string;
  psk: Uint8Array;
  bootstrap: readonly string[];
  genesis: readonly GenesisMember[];
  nowMs: number;
  ttlMs: number;
}

export interface InviteToken {
  readonly cluster: string;
  readonly issuer: string;
  readonly psk: Uint8Array;
  readonly bootstrap: readonly string[];
  readonly genesis: readonly GenesisMember[];
  readonly expiresMs: number;
  readonly issuedMs: number;
  /** node/p2p admission invite (envelope bytes) and its one-time secret, for createJoinClaim. */
  readonly invite: Uint8Array;
  readonly secret: Uint8Array;
}

export function createInviteToken(issuer: Identity, o: InviteTokenInput): string {
  if (!(Number.isSafeInteger(o.ttlMs) && o.ttlMs > 0 && o.ttlMs <= INVITE_TTL_MAX_MS)) {
    throw new RuntimeError('ERR_TOKEN_INVALID', `invite lifetime must be between 1 ms and ${INVITE_TTL_MAX_MS / 3600_000} h`, { ttlMs: o.ttlMs });
  }
  if (o.bootstrap.length === 0) throw new RuntimeError('ERR_NO_ADDRESSES', 'this node has no address to put in the invite (is it listening?)');
  if (o.bootstrap.length > INVITE_BOOTSTRAP_MAX) throw new RuntimeError('ERR_TOKEN_INVALID', `at most ${INVITE_BOOTSTRAP_MAX} bootstrap addresses`, {});
  if (o.psk.length !== PSK_BYTES) throw new RuntimeError('ERR_TOKEN_INVALID', `pre-shared key must be ${PSK_BYTES} bytes`, {});
  const secret = new Uint8Array(randomBytes(SECRET_BYTES));
  const invite = createInvite(issuer, { cluster: o.cluster, nowMs: o.nowMs, ttlMs: o.ttlMs, secret });
  const expires = o.nowMs + o.ttlMs;
  const bytes = createEnvelope(issuer, {
    kind: INVITE_TOKEN_KIND,
    cluster: o.cluster,
    seq: 0,
    time: o.nowMs,
    body: {
      invite,
      secret,
      psk: o.psk,
      bootstrap: [...o.bootstrap],
      genesis: o.genesis.map((m) => ({ peerId: m.peerId, publicKey: new Uint8Array(Buffer.from(m.publicKey, 'hex')) })),
      expires,
    },
  });
  return Buffer.from(bytes).toString('base64url');
}

function malformed(detail: string): RuntimeError {
  return new RuntimeError('ERR_TOKEN_MALFORMED', `not a fednode invite token: ${detail}`, { detail });
}

/** Read the cluster id out of the signed part without trusting it (to pick the verification domain). */
function peekCluster(bytes: Uint8Array): string {
  let outer: unknown;
  try {
    outer = decodeCanonical(bytes, INVITE_TOKEN_MAX_CHARS);
  } catch (e) {
    throw malformed(e instanceof Error ? e.message : 'undecodable');
  }
  if (!Array.isArray(outer) || !(outer[0] instanceof Uint8Array)) throw malformed('not a signed envelope');
  let signed: unknown;
  try {
    signed = decodeCanonical(outer[0], INVITE_TOKEN_MAX_CHARS);
  } catch (e) {
    throw malformed(e instanceof Error ? e.message : 'undecodable');
  }
  if (typeof signed !== 'object' || signed === null || !('c' in signed)) throw malformed('envelope without a cluster');
  const c = (signed).c;
  if (typeof c !== 'string' || !clusterIdPattern.test(c)) throw malformed('cluster id malformed');
  return c;
}

/**
 * Parse and verify a token. Errors, each specific: ERR_TOKEN_MALFORMED (not base64url,
 * not an envelope, bad body), ERR_TOKEN_WRONG_KIND (some other signed object),
 * ERR_TOKEN_BAD_SIGNATURE (tampered), ERR_TOKEN_EXPIRED.
 */
export function parseInviteToken(token: string, nowMs: number): InviteToken {
  const text = token.trim();
  if (text.length === 0) throw malformed('empty');
  if (text.length > INVITE_TOKEN_MAX_CHARS) throw malformed(`longer than ${INVITE_TOKEN_MAX_CHARS} characters`);
  if (!/^[A-Za-z0-9_-]+$/.test(text)) throw malformed('contains characters outside base64url (A-Z a-z 0-9 - _); was it cut or wrapped?');
  const bytes = new Uint8Array(Buffer.from(text, 'base64url'));
  const cluster = peekCluster(bytes);
  const d = openEnvelope(bytes, { kinds: [INVITE_TOKEN_KIND], cluster, maxBytes: INVITE_TOKEN_MAX_CHARS });
  if (!d.ok) {
    if (d.code === 'bad-signature') throw new RuntimeError('ERR_TOKEN_BAD_SIGNATURE', 'invite token signature does not verify: it was altered after signing', { detail: d.detail });
    if (d.code === 'wrong-kind') throw new RuntimeError('ERR_TOKEN_WRONG_KIND', `this is a signed fednode object but not an invite token (${d.detail})`, { detail: d.detail });
    throw malformed(`${d.code}: ${d.detail}`);
  }
  let body: Record<string, unknown>;
  try {
    body = expectRecord(d.envelope.body, ['invite', 'secret', 'psk', 'bootstrap', 'genesis', 'expires'], 'invite token body');
  } catch (e) {
    throw malformed(e instanceof Error ? e.message : 'bad body');
  }
  const { invite, secret, psk, bootstrap, genesis, expires } = body;
  if (!(invite instanceof Uint8Array)) throw malformed('invite must be bytes');
  if (!(secret instanceof Uint8Array) || secret.length !== SECRET_BYTES) throw malformed(`secret must be ${SECRET_BYTES} bytes`);
  if (!(psk instanceof Uint8Array) || psk.length !== PSK_BYTES) throw malformed(`psk must be ${PSK_BYTES} bytes`);
  if (!Array.isArray(bootstrap) || bootstrap.length === 0 || bootstrap.length > INVITE_BOOTSTRAP_MAX || !bootstrap.every((a) => typeof a === 'string' && a.startsWith('/') && a.length <= 512)) {
    throw malformed(`bootstrap must be 1..${INVITE_BOOTSTRAP_MAX} multiaddrs`);
  }
  if (!Array.isArray(genesis) || genesis.length === 0 || genesis.length > INVITE_GENESIS_MAX) throw malformed('genesis list missing or too long');
  const members: GenesisMember[] = [];
  for (const g of genesis) {
    let rec: Record<string, unknown>;
    try {
      rec = expectRecord(g, ['peerId', 'publicKey'], 'genesis member');
    } catch (e) {
      throw malformed(e instanceof Error ? e.message : 'bad genesis member');
    }
    if (typeof rec['peerId'] !== 'string' || !(rec['publicKey'] instanceof Uint8Array) || rec['publicKey'].length !== 32) throw malformed('genesis member malformed');
    members.push({ peerId: rec['peerId'], publicKey: Buffer.from(rec['publicKey']).toString('hex') });
  }
  if (typeof expires !== 'number' || !Number.isSafeInteger(expires)) throw malformed('expires must be an integer');
  if (nowMs >= expires) {
    throw new RuntimeError('ERR_TOKEN_EXPIRED', `invite token expired at ${new Date(expires).toISOString()} (ask a member for a new one: \`fednode invite\`)`, { expiresMs: expires, nowMs });
  }
  return {
    cluster,
    issuer: d.envelope.signerId,
    psk,
    bootstrap: bootstrap as string[],
    genesis: members,
    expiresMs: expires,
    issuedMs: d.envelope.time,
    invite,
    secret,
  };
}
