/**
 * Patterns: the typed records the cluster agrees on. A proposal value is a batch of pattern
 * operations encoded as canonical CBOR `{v: 1, ops: [...]}`. This file holds the types, the
 * bounds, and the stateless checks (shape, sizes, content hash); `registry.ts` adds the checks
 * that depend on the registry (membership, quality gates, counts) and applies decided batches.
 */
import { decodeCanonical, encodeCanonical, expectRecord } from '../crypto/cbor.js';
import { blake3 } from '../crypto/blake3.js';
import { ConsensusError } from './types.js';

// Bounds (each with its reason).
/** 512 ops: the 500 patterns/s target at n = 4 is met with a few batches per second. */
export const MAX_BATCH_OPS = 512;
/** 192 KiB: a proposal travels in one gossip envelope of at most 256 KiB with room for its fields. */
export const MAX_BATCH_BYTES = 192 * 1024;
/** 64 KiB of pattern content: prompts, templates and small configs, not documents (one fills a third of a batch). */
export const MAX_CONTENT_BYTES = 64 * 1024;
export const MAX_NAME_CHARS = 128;
export const MAX_TAGS = 16;
export const MAX_TAG_CHARS = 64;
/** Metric maps (quality scores, gates, routing weights): a handful of named numbers. */
export const MAX_METRICS = 16;
export const MAX_ALIAS_CHARS = 256;
export const MAX_MEMBER_NAME_CHARS = 64;
/** Power per member: small integers are enough for a lab; keeps total power far below 2^40. */
export const MAX_MEMBER_POWER = 1_000_000;

export const BATCH_VERSION = 1;

export interface RoutePolicy {
  /** Named weights of the routing score (e.g. load, latency, power), each in [0, 1000]. */
  readonly weights: Readonly<Record<string, number>>;
  /** Battery-powered members below this charge (%) get no forwarded work. */
  readonly batteryFloorPct: number;
  /** Members whose GPU is hotter than this (degrees C) get no forwarded work. */
  readonly temperatureCeilingC: number;
}

export type PatternOp =
  | {
      readonly kind: 'member.add';
      readonly publicKey: Uint8Array;
      readonly power: number;
      readonly name: string;
      /**
       * Digest (32 bytes) of the one-time invite this add consumes (the `inviteKey` of
       * node/p2p/members.ts verifyJoinClaim); the registry refuses a digest already used.
       * Absent (never null on the wire) for operator-proposed adds, so such an op encodes
       * exactly as before the field existed.
       */
      readonly invite?: Uint8Array;
    }
  | { readonly kind: 'member.remove'; readonly publicKey: Uint8Array }
  | ({ readonly kind: 'route.policy' } & RoutePolicy)
  /** `model: null` removes the alias. */
  | { readonly kind: 'model.alias'; readonly alias: string; readonly model: string | null }
  /** Cluster-wide minimum quality scores that a user pattern carrying scores must meet. */
  | { readonly kind: 'quality.gates'; readonly gates: Readonly<Record<string, number>> }
  | {
      readonly kind: 'pattern';
      readonly name: string;
      readonly content: string;
      /** BLAKE3 (32 bytes) of the UTF-8 content; must match. */
      readonly contentHash: Uint8Array;
      readonly tags: readonly string[];
      /** Optional quality scores by metric; when present, every gated metric must be present and meet its gate. */
      readonly quality: Readonly<Record<string, number>> | null;
    };

export type PatternKind = PatternOp['kind'];
export const PATTERN_KINDS: readonly PatternKind[] = ['member.add', 'member.remove', 'route.policy', 'model.alias', 'quality.gates', 'pattern'];

const METRIC_RE = /^[a-z][a-z0-9_.-]{0,31}$/; // also keeps '__proto__' and friends out of plain objects
const utf8 = new TextEncoder();

export function contentHashOf(content: string): Uint8Array {
  return blake3(utf8.encode(content));
}

function fail(message: string, data: Record<string, unknown> = {}): never {
  throw new ConsensusError('ERR_PATTERN_INVALID', message, data);
}

function str(v: unknown, what: string, maxChars: number, minChars = 1): string {
  if (typeof v !== 'string') fail(`${what} must be a string`, { what });
  if (v.length < minChars || v.length > maxChars) fail(`${what} must be ${minChars}-${maxChars} characters`, { what, length: v.length });
  return v;
}

function num(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) fail(`${what} must be a number in [${min}, ${max}]`, { what, value: v });
  return v;
}

function key32(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== 32) fail(`${what} must be 32 bytes`, { what });
  return v;
}

function metrics(v: unknown, what: string, min: number, max: number): Record<string, number> {
  const rec = expectRecord(v, Object.keys(v !== null && typeof v === 'object' ? v : {}), what);
  const keys = Object.keys(rec);
  if (keys.length > MAX_METRICS) fail(`${what} has more than ${MAX_METRICS} entries`, { what, count: keys.length });
  const out: Record<string, number> = {};
  for (const k of keys.sort()) {
    if (!METRIC_RE.test(k)) fail(`${what}: bad metric name '${k.slice(0, 40)}'`, { what });
    out[k] = num(rec[k], `${what}.${k}`, min, max);
  }
  return out;
}

/** Stateless shape and bounds check of one op; returns a normalised copy. Throws ERR_PATTERN_INVALID. */
export function checkOp(raw: unknown): PatternOp {
  const kind = (expectRecord(raw, ['kind', 'publicKey', 'power', 'name', 'invite', 'weights', 'batteryFloorPct', 'temperatureCeilingC', 'alias', 'model', 'gates', 'content', 'contentHash', 'tags', 'quality'], 'op') as { kind?: unknown }).kind;
  switch (kind) {
    case 'member.add': {
      const r = expectRecord(raw, ['kind', 'publicKey', 'power', 'name', 'invite'], 'member.add');
      const power = num(r['power'], 'power', 1, MAX_MEMBER_POWER);
      if (!Number.isSafeInteger(power)) fail('power must be an integer', { power });
      const add = { kind, publicKey: key32(r['publicKey'], 'publicKey'), power, name: str(r['name'], 'name', MAX_MEMBER_NAME_CHARS, 0) };
      // Optional and absent when unused: one encoding per meaning (null would be a second one).
      if (r['invite'] === undefined) return add;
      if (r['invite'] === null) fail('invite must be 32 bytes (leave the field out when the add uses no invite)', { what: 'invite' });
      return { ...add, invite: key32(r['invite'], 'invite') };
    }
    case 'member.remove': {
      const r = expectRecord(raw, ['kind', 'publicKey'], 'member.remove');
      return { kind, publicKey: key32(r['publicKey'], 'publicKey') };
    }
    case 'route.policy': {
      const r = expectRecord(raw, ['kind', 'weights', 'batteryFloorPct', 'temperatureCeilingC'], 'route.policy');
      return {
        kind,
        weights: metrics(r['weights'], 'weights', 0, 1000),
        batteryFloorPct: num(r['batteryFloorPct'], 'batteryFloorPct', 0, 100),
        temperatureCeilingC: num(r['temperatureCeilingC'], 'temperatureCeilingC', 0, 150),
      };
    }
    case 'model.alias': {
      const r = expectRecord(raw, ['kind', 'alias', 'model'], 'model.alias');
      const alias = str(r['alias'], 'alias', MAX_ALIAS_CHARS);
      const model = r['model'] === null ? null : str(r['model'], 'model', MAX_ALIAS_CHARS);
      if (model === alias) fail('an alias cannot name itself', { alias });
      return { kind, alias, model };
    }
    case 'quality.gates': {
      const r = expectRecord(raw, ['kind', 'gates'], 'quality.gates');
      return { kind, gates: metrics(r['gates'], 'gates', -1e9, 1e9) };
    }
    case 'pattern': {
      const r = expectRecord(raw, ['kind', 'name', 'content', 'contentHash', 'tags', 'quality'], 'pattern');
      const name = str(r['name'], 'name', MAX_NAME_CHARS);
      const content = str(r['content'], 'content', MAX_CONTENT_BYTES, 0);
      const contentBytes = utf8.encode(content);
      if (contentBytes.length > MAX_CONTENT_BYTES) fail(`content exceeds ${MAX_CONTENT_BYTES} bytes`, { bytes: contentBytes.length });
      const contentHash = key32(r['contentHash'], 'contentHash');
      const actual = blake3(contentBytes);
      for (let i = 0; i < 32; i++) if (actual[i] !== contentHash[i]) fail('content hash does not match the BLAKE3 of the content', { name });
      const tagsRaw = r['tags'];
      if (!Array.isArray(tagsRaw) || tagsRaw.length > MAX_TAGS) fail(`tags must be a list of at most ${MAX_TAGS}`, { name });
      const tags = (tagsRaw as unknown[]).map((t) => str(t, 'tag', MAX_TAG_CHARS));
      if (new Set(tags).size !== tags.length) fail('duplicate tag', { name });
      const quality = r['quality'] === null || r['quality'] === undefined ? null : metrics(r['quality'], 'quality', -1e9, 1e9);
      return { kind, name, content, contentHash, tags, quality };
    }
    default:
      return fail(`unknown pattern kind '${String(kind).slice(0, 40)}'`, { kind: String(kind).slice(0, 40) });
  }
}

/**
 * Canonical CBOR of a batch. Throws ERR_PATTERN_INVALID if an op is malformed or the batch is over a bound.
 * The empty batch is a valid value: a proposer with nothing pending proposes it once a height has
 * started (membership changes decided earlier still come into force at their height).
 */
export function encodeBatch(ops: readonly PatternOp[]): Uint8Array {
  if (ops.length > MAX_BATCH_OPS) fail(`a batch holds at most ${MAX_BATCH_OPS} ops`, { count: ops.length });
  const checked = ops.map(checkOp);
  const bytes = encodeCanonical({ v: BATCH_VERSION, ops: checked });
  if (bytes.length > MAX_BATCH_BYTES) fail(`batch of ${bytes.length} bytes exceeds ${MAX_BATCH_BYTES}`, { bytes: bytes.length });
  return bytes;
}

/**
 * Decode and statically check a batch (size, canonical CBOR, schema, bounds, content hashes).
 * Throws ConsensusError ERR_PATTERN_ENCODING (bytes) or ERR_PATTERN_INVALID (an op).
 */
export function decodeBatch(bytes: Uint8Array): PatternOp[] {
  if (!(bytes instanceof Uint8Array)) throw new ConsensusError('ERR_PATTERN_ENCODING', 'batch must be bytes');
  if (bytes.length > MAX_BATCH_BYTES) throw new ConsensusError('ERR_PATTERN_ENCODING', `batch of ${bytes.length} bytes exceeds ${MAX_BATCH_BYTES}`, { bytes: bytes.length });
  let top: Record<string, unknown>;
  try {
    top = expectRecord(decodeCanonical(bytes, MAX_BATCH_BYTES), ['v', 'ops'], 'batch');
  } catch (err) {
    throw new ConsensusError('ERR_PATTERN_ENCODING', `batch is not a canonical CBOR map: ${(err as Error).message}`);
  }
  if (top['v'] !== BATCH_VERSION) throw new ConsensusError('ERR_PATTERN_ENCODING', `unsupported batch version`, { v: top['v'] });
  const ops = top['ops'];
  if (!Array.isArray(ops) || ops.length > MAX_BATCH_OPS) throw new ConsensusError('ERR_PATTERN_ENCODING', `a batch holds at most ${MAX_BATCH_OPS} ops`);
  return (ops as unknown[]).map((op, index) => {
    try {
      return checkOp(op);
    } catch (err) {
      if (err instanceof ConsensusError) throw new ConsensusError('ERR_PATTERN_INVALID', `op ${index}: ${err.message}`, { ...err.data, index });
      throw new ConsensusError('ERR_PATTERN_INVALID', `op ${index}: ${(err as Error).message}`, { index });
    }
  });
}
