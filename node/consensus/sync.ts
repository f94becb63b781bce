/**
 * Catch-up protocol `/fednode/consensus/sync/1.0.0`: one length-prefixed CBOR frame each way.
 *   request  {from, limit}: decided heights >= from, at most `limit`
 *   response {decided, height, entries: [{height, round, value, certificate}], messages: [bytes]}
 * `messages` are the server's known proposals and votes of its current height when the
 * requester is at that height (`from` > server's decided height): a node that missed votes or a
 * proof-of-lock gets them. Every certificate is verified by the requester against the validator
 * set OF ITS HEIGHT before anything is applied; nothing here is trusted.
 * Served to any connected peer (a joining node holds the PSK but is not a member yet, and must
 * read the log to see its own admission). Decoders never throw: they return null on garbage.
 */
import { decodeCanonical, encodeCanonical, expectRecord } from '../../crypto/cbor.js';
import { FednodeError } from '../../base/errors.js';
import { request, respond } from '../../base/reqresp.js';
import { decodeCertificate, decodeMessage, MAX_CERTIFICATE_BYTES, MAX_MESSAGE_BYTES } from '../../consensus/codec.js';
import type { CommitCertificate, ConsensusMessage } from '../../consensus/types.js';
import type { Host, Stream } from '../p2p/host.js';

export const SYNC_PROTOCOL = '/fednode/consensus/sync/1.0.0';
/** Heights per response: 64 small batches are a few hundred KiB; 1,000 heights take 16 round trips. */
export const MAX_SYNC_HEIGHTS = 64;
/** Current-height messages per response: a proposal and two votes per validator for a few rounds. */
export const MAX_SYNC_MESSAGES = 512;
/** Bytes of entries and messages a server puts in one response (it always sends at least one entry). */
export const SYNC_RESPONSE_BUDGET_BYTES = 4 * 1024 * 1024;
/** Largest response frame: the budget plus one maximal entry (value + certificate) and framing. */
export const MAX_SYNC_RESPONSE_BYTES = SYNC_RESPONSE_BUDGET_BYTES + MAX_MESSAGE_BYTES + MAX_CERTIFICATE_BYTES + 64 * 1024;
/** A request is two integers. */
export const MAX_SYNC_REQUEST_BYTES = 256;
/** One exchange on a LAN takes milliseconds; a stuck or slow peer is dropped after this. */
export const SYNC_TIMEOUT_MS_DEFAULT = 5_000;
/** Concurrent inbound sync streams per connection: one catch-up at a time is what an honest peer runs. */
export const SYNC_MAX_INBOUND_STREAMS = 4;

export type SyncErrorCode = 'ERR_SYNC_TIMEOUT' | 'ERR_SYNC_BAD_FRAME' | 'ERR_SYNC_NO_REPLY';
export class SyncError extends FednodeError<SyncErrorCode> {
  constructor(code: SyncErrorCode, message: string, data: Record<string, unknown> = {}) {
    super(code, message, data);
    this.name = 'SyncError';
  }
}

export interface SyncRequest {
  readonly from: number;
  readonly limit: number;
}

export interface SyncEntry {
  readonly height: number;
  readonly round: number;
  readonly value: Uint8Array;
  readonly certificate: CommitCertificate;
}

export interface SyncResponse {
  /** The server's last decided height. */
  readonly decided: number;
  /** The height the server's core is at (decided + 1 while deciding it). */
  readonly height: number;
  readonly entries: readonly SyncEntry[];
  readonly messages: readonly ConsensusMessage[];
}

const isInt = (n: unknown, min: number): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= min;

export function encodeSyncRequest(r: SyncRequest): Uint8Array {
  return encodeCanonical({ from: r.from, limit: r.limit });
}

export function decodeSyncRequest(bytes: Uint8Array): SyncRequest | null {
  try {
    const r = expectRecord(decodeCanonical(bytes, MAX_SYNC_REQUEST_BYTES), ['from', 'limit'], 'sync request');
    if (!isInt(r['from'], 1) || !isInt(r['limit'], 1)) return null;
    return { from: r['from'], limit: Math.min(r['limit'], MAX_SYNC_HEIGHTS) };
  } catch {
    return null;
  }
}

/** Response as raw parts: entries carry their stored certificate bytes, messages their wire bytes. */
export interface SyncResponseParts {
  readonly decided: number;
  readonly height: number;
  readonly entries: readonly { height: number; round: number; value: Uint8Array; certificate: Uint8Array }[];
  readonly messages: readonly Uint8Array[];
}

export function encodeSyncResponse(r: SyncResponseParts): Uint8Array {
  return encodeCanonical({
    decided: r.decided,
    height: r.height,
    entries: r.entries.map((e) => ({ height: e.height, round: e.round, value: e.value, certificate: e.certificate })),
    messages: [...r.messages],
  });
}

export function decodeSyncResponse(bytes: Uint8Array): SyncResponse | null {
  try {
    const r = expectRecord(decodeCanonical(bytes, MAX_SYNC_RESPONSE_BYTES), ['decided', 'height', 'entries', 'messages'], 'sync response');
    if (!isInt(r['decided'], 0) || !isInt(r['height'], 0)) return null;
    const rawEntries = r['entries'];
    const rawMessages = r['messages'];
    if (!Array.isArray(rawEntries) || rawEntries.length > MAX_SYNC_HEIGHTS) return null;
    if (!Array.isArray(rawMessages) || rawMessages.length > MAX_SYNC_MESSAGES) return null;
    const entries: SyncEntry[] = [];
    for (const raw of rawEntries as unknown[]) {
      const e = expectRecord(raw, ['height', 'round', 'value', 'certificate'], 'sync entry');
      if (!isInt(e['height'], 1) || !isInt(e['round'], 0) || !(e['value'] instanceof Uint8Array) || !(e['certificate'] instanceof Uint8Array)) return null;
      const certificate = decodeCertificate(e['certificate']);
      if (certificate === null) return null;
      entries.push({ height: e['height'], round: e['round'], value: e['value'], certificate });
    }
    const messages: ConsensusMessage[] = [];
    for (const raw of rawMessages as unknown[]) {
      if (!(raw instanceof Uint8Array)) return null;
      const m = decodeMessage(raw);
      if (m === null) return null;
      messages.push(m);
    }
    return { decided: r['decided'], height: r['height'], entries, messages };
  } catch {
    return null;
  }
}

/** Client side: one request, one response (raw bytes; the caller decodes and verifies). */
export async function requestSync(host: Host, peerId: string, req: SyncRequest, timeoutMs: number): Promise<Uint8Array> {
  const stream = await host.dialProtocol(peerId, SYNC_PROTOCOL, { signal: AbortSignal.timeout(timeoutMs) });
  return request(stream, encodeSyncRequest(req), { maxInboundBytes: MAX_SYNC_RESPONSE_BYTES, timeoutMs, what: `${SYNC_PROTOCOL} to ${peerId}` });
}

/** Server side: read one request, answer it. Returns false (and aborts the stream) on a bad request. */
export function serveSync(stream: Stream, timeoutMs: number, answer: (req: SyncRequest) => Promise<Uint8Array>): Promise<boolean> {
  return respond(stream, { maxInboundBytes: MAX_SYNC_REQUEST_BYTES, timeoutMs, what: SYNC_PROTOCOL }, async (raw) => {
    const req = raw === null ? null : decodeSyncRequest(raw);
    return req === null ? null : answer(req);
  });
}
