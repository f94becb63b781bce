/**
 * The decided log: LevelDB section `consensus`, one key per height (zero-padded so keys sort
 * by height) -> canonical CBOR {round, value, certificate, registryHash, decidedMs}. Written
 * with `sync: true` BEFORE the decision is acted on (applied, announced, or the next height
 * started), so a decided height is never lost across kill -9.
 */
import { decodeCanonical, encodeCanonical, expectRecord } from '../../crypto/cbor.js';
import { decodeCertificate, encodeCertificate, MAX_CERTIFICATE_BYTES, MAX_MESSAGE_BYTES } from '../../consensus/codec.js';
import type { CommitCertificate } from '../../consensus/types.js';
import type { StoreSectionDb } from '../store/index.js';

/** A stored entry: value (<= one envelope) plus a certificate (<= 64 KiB) and small fields. */
export const MAX_ENTRY_BYTES = MAX_MESSAGE_BYTES + MAX_CERTIFICATE_BYTES + 1024;
/** Entries read per LevelDB iteration while replaying (bounded memory per pass). */
const READ_CHUNK = 256;
const KEY_PREFIX = 'h';
const KEY_DIGITS = 15; // heights below 10^15: far beyond any cluster's life at one height per ms

export interface StoredDecision {
  readonly height: number;
  readonly round: number;
  readonly value: Uint8Array;
  readonly certificate: CommitCertificate;
  /** Encoded certificate as stored (sent as-is by catch-up). */
  readonly certificateBytes: Uint8Array;
  readonly registryHash: Uint8Array;
  readonly decidedMs: number;
}

export function heightKey(h: number): string {
  return KEY_PREFIX + String(h).padStart(KEY_DIGITS, '0');
}

export type DecodedDecision = { ok: true; d: StoredDecision } | { ok: false; reason: string };

export function decodeDecision(height: number, bytes: Uint8Array): DecodedDecision {
  try {
    const r = expectRecord(decodeCanonical(bytes, MAX_ENTRY_BYTES), ['round', 'value', 'certificate', 'registryHash', 'decidedMs'], 'decided entry');
    const { round, value, certificate, registryHash, decidedMs } = r;
    if (typeof round !== 'number' || !Number.isSafeInteger(round) || round < 0) return { ok: false, reason: 'bad round' };
    if (!(value instanceof Uint8Array)) return { ok: false, reason: 'value is not bytes' };
    if (!(certificate instanceof Uint8Array)) return { ok: false, reason: 'certificate is not bytes' };
    if (!(registryHash instanceof Uint8Array) || registryHash.length !== 32) return { ok: false, reason: 'bad registry hash' };
    if (typeof decidedMs !== 'number' || !Number.isSafeInteger(decidedMs)) return { ok: false, reason: 'bad decidedMs' };
    const cert = decodeCertificate(certificate);
    if (cert === null) return { ok: false, reason: 'certificate does not decode' };
    if (cert.height !== height || cert.round !== round) return { ok: false, reason: 'certificate is for another height or round' };
    return { ok: true, d: { height, round, value, certificate: cert, certificateBytes: certificate, registryHash, decidedMs } };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

export type DecisionInput = Omit<StoredDecision, 'certificateBytes'> & { readonly certificateBytes?: Uint8Array };

/** The stored form of one height (the simulator's in-memory log keeps the same bytes). */
export function encodeDecision(d: DecisionInput): Uint8Array {
  return encodeCanonical({
    round: d.round,
    value: d.value,
    certificate: d.certificateBytes ?? encodeCertificate(d.certificate),
    registryHash: d.registryHash,
    decidedMs: d.decidedMs,
  });
}

export class DecidedLog {
  constructor(private readonly db: StoreSectionDb) {}

  async put(d: DecisionInput): Promise<void> {
    await this.db.put(heightKey(d.height), encodeDecision(d), { sync: true });
  }

  /** Several heights in one synced LevelDB batch (tests and tools that build a log). */
  async putMany(ds: readonly DecisionInput[]): Promise<void> {
    await this.db.batch(
      ds.map((d) => ({ type: 'put' as const, key: heightKey(d.height), value: encodeDecision(d) })),
      { sync: true },
    );
  }

  /** Raw entries with height >= from, ascending, at most `limit`. */
  async *raw(from: number, limit: number): AsyncGenerator<{ height: number; bytes: Uint8Array }> {
    let next = Math.max(1, from);
    let left = limit;
    while (left > 0) {
      const n = Math.min(left, READ_CHUNK);
      let got = 0;
      for await (const [key, bytes] of this.db.entries({ gte: heightKey(next), lt: KEY_PREFIX + '~', limit: n })) {
        const height = Number(key.slice(KEY_PREFIX.length));
        got++;
        next = height + 1;
        yield { height, bytes };
      }
      left -= got;
      if (got < n) return;
    }
  }
}
