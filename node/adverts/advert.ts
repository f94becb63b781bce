/**
 * The advert body: what one node tells its cluster about itself every ~2 s.
 * Closed schema (unknown fields rejected, never dropped: the body is signed), every
 * number range-checked, every array and string bounded. A value the node could not
 * read is null, never invented.
 *
 * parseAdvertBody never throws: a peer's garbage becomes { ok: false, code, field, detail }.
 */
import { FednodeError } from '../../base/errors.js';
import { ADDRS_PER_PEER_MAX, checkDialAddr } from '../p2p/addrs.js';
import { isPowerProfile, type PowerProfile } from './profile.js';

export interface AdvertGpu {
  /** nvidia-smi index, 0..MAX_GPU_INDEX. */
  readonly index: number;
  readonly name: string;
  readonly memoryTotalMiB: number | null;
  readonly memoryUsedMiB: number | null;
  readonly utilizationPct: number | null;
  readonly temperatureC: number | null;
  readonly powerDrawW: number | null;
  readonly powerLimitW: number | null;
}

export interface AdvertPower {
  readonly source: 'ac' | 'battery' | null;
  readonly batteryPct: number | null;
  readonly charging: boolean | null;
}

export interface AdvertBody {
  /** Model ids this node serves (from its backends), sorted, unique. */
  readonly models: readonly string[];
  /** Requests being processed now. */
  readonly inFlight: number;
  /** Requests accepted and waiting for a slot. */
  readonly queued: number;
  /** Max concurrent requests (0: serves nothing now). */
  readonly capacity: number;
  readonly gpus: readonly AdvertGpu[];
  /** 1-minute load average per logical CPU (1.0 = all busy). */
  readonly cpuLoad: number | null;
  readonly memUsedBytes: number | null;
  readonly memTotalBytes: number | null;
  readonly power: AdvertPower;
  /** CPU package power from RAPL, watts. */
  readonly cpuPackageW: number | null;
  readonly profile: PowerProfile;
  readonly profilePinned: boolean;
  /** Where this node's OpenAI-compatible API listens (http/https URL), null if not exposed. */
  readonly apiUrl: string | null;
  /** Tokens this node generated per second over its last measuring window (node/adverts/energy.ts); null when it generated none. */
  readonly tokensPerS: number | null;
  /**
   * This node's estimate of energy per generated token, joules: GPU power draw over tokens/s,
   * smoothed over the windows in which it generated tokens and kept while idle; null until measured
   * (routing then uses a per-profile default). Read by the routing policy's energy term.
   */
  readonly joulesPerToken: number | null;
  /**
   * Where this node can be dialled (node/p2p/addrs.ts canonical form: /ip4|ip6|dns4|dns6/HOST/tcp/PORT,
   * no /p2p, never a 0.0.0.0 / :: wildcard), so members that are not connected to it learn its
   * address (the mesh keeper dials them); at most 8. Absent (undefined) from an older node's body.
   */
  readonly addrs?: readonly string[];
}

/** Bounds, each with its reason. A body within them encodes to well under ADVERT_MAX_BYTES. */
export const ADVERT_LIMITS = Object.freeze({
  /** A home-lab node serves a handful of models; 64 keeps the advert under ~10 KiB of names. */
  maxModels: 64,
  /** Ollama/HF ids ("org/name:tag") are far shorter; 128 bounds the advert. */
  maxModelChars: 128,
  /** 16 GPUs is the most PCIe slots one host offers (DGX-class boxes have 8-16). */
  maxGpus: 16,
  maxGpuIndex: 255,
  maxGpuNameChars: 128,
  /** Concurrent/queued requests one node can hold; beyond this the number is broken, not load. */
  maxRequests: 100_000,
  /** Load average per CPU above 1000 is a broken reading. */
  maxCpuLoad: 1000,
  /** 1 PiB of RAM: any larger value is a broken reading (and stays a safe integer). */
  maxMemBytes: 2 ** 50,
  /** 16 TiB of GPU memory per device, in MiB. */
  maxGpuMemMiB: 16 * 1024 * 1024,
  minTempC: -50,
  maxTempC: 200,
  /** 10 kW per GPU / 2 kW CPU packages: outside any real part. */
  maxGpuPowerW: 10_000,
  maxCpuPackageW: 2_000,
  /** URLs longer than this are not an API address someone typed. */
  maxApiUrlChars: 256,
  /** 1 M tokens/s: beyond any single node (a large GPU box batching decodes a few tens of thousands). */
  maxTokensPerS: 1_000_000,
  /** 100 kJ per token: a 10 kW reading over 0.1 tokens/s; anything above is a broken reading. */
  maxJoulesPerToken: 100_000,
});

export const ADVERT_FIELDS = [
  'models',
  'inFlight',
  'queued',
  'capacity',
  'gpus',
  'cpuLoad',
  'memUsedBytes',
  'memTotalBytes',
  'power',
  'cpuPackageW',
  'profile',
  'profilePinned',
  'apiUrl',
  'tokensPerS',
  'joulesPerToken',
  'addrs',
] as const;
/** Fields added after the first release: absent in a body from an older node means null (it never measured) or, for addrs, none. */
const OPTIONAL_FIELDS: readonly string[] = ['tokensPerS', 'joulesPerToken', 'addrs'];
const GPU_FIELDS = ['index', 'name', 'memoryTotalMiB', 'memoryUsedMiB', 'utilizationPct', 'temperatureC', 'powerDrawW', 'powerLimitW'] as const;
const POWER_FIELDS = ['source', 'batteryPct', 'charging'] as const;

export type AdvertErrorCode = 'not-a-map' | 'unknown-field' | 'missing-field' | 'wrong-type' | 'out-of-range' | 'too-long' | 'duplicate' | 'inconsistent';

export type AdvertParse = { readonly ok: true; readonly body: AdvertBody } | { readonly ok: false; readonly code: AdvertErrorCode; readonly field: string; readonly detail: string };

/** ERR_ADVERT_INVALID: this node's own body fails the schema (data: reason, field).
 *  ERR_ADVERT_CONFIG: invalid publisher / peer table options (data: option). */
export type AdvertErrorKind = 'ERR_ADVERT_INVALID' | 'ERR_ADVERT_CONFIG';

export class AdvertError extends FednodeError<AdvertErrorKind> {
  constructor(code: AdvertErrorKind, message: string, data: Record<string, unknown> = {}) {
    super(code, message, data);
    this.name = 'AdvertError';
  }
}

/** Check an option that must be a positive safe integer; throws ERR_ADVERT_CONFIG. */
export function assertPositiveInt(value: number, option: string): void {
  if (!Number.isSafeInteger(value) || value <= 0) throw new AdvertError('ERR_ADVERT_CONFIG', `${option} must be a positive integer, got ${value}`, { option, value });
}

/** Internal: thrown inside the parser, caught in parseAdvertBody and turned into an AdvertParse (never escapes, so not a FednodeError). */
class Reject extends Error {
  constructor(
    readonly code: AdvertErrorCode,
    readonly field: string,
    readonly detail: string,
  ) {
    super(`${field}: ${detail}`);
  }
}

function record(v: unknown, allowed: readonly string[], field: string, optional: readonly string[] = []): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) throw new Reject('not-a-map', field, 'expected a map');
  const rec = v as Record<string, unknown>;
  for (const k of Object.keys(rec)) if (!allowed.includes(k)) throw new Reject('unknown-field', field === '' ? k : `${field}.${k}`, 'unknown field');
  for (const k of allowed) if (!(k in rec) && !optional.includes(k)) throw new Reject('missing-field', field === '' ? k : `${field}.${k}`, 'missing');
  return rec;
}

function number(v: unknown, field: string, min: number, max: number, integer: boolean): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Reject('wrong-type', field, 'expected a finite number');
  if (integer && !Number.isSafeInteger(v)) throw new Reject('wrong-type', field, 'expected an integer');
  if (v < min || v > max) throw new Reject('out-of-range', field, `${v} outside [${min}, ${max}]`);
  return v;
}

function nullableNumber(v: unknown, field: string, min: number, max: number, integer: boolean): number | null {
  return v === null ? null : number(v, field, min, max, integer);
}

/** Printable text (no control characters: these strings reach terminals in `fednode peers`). */
function text(v: unknown, field: string, maxChars: number): string {
  if (typeof v !== 'string') throw new Reject('wrong-type', field, 'expected a string');
  if (v.length === 0) throw new Reject('out-of-range', field, 'empty string');
  if (v.length > maxChars) throw new Reject('too-long', field, `${v.length} characters, at most ${maxChars}`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(v)) throw new Reject('wrong-type', field, 'control characters are not allowed');
  return v;
}

function array(v: unknown, field: string, max: number): readonly unknown[] {
  if (!Array.isArray(v)) throw new Reject('wrong-type', field, 'expected an array');
  if (v.length > max) throw new Reject('too-long', field, `${v.length} entries, at most ${max}`);
  return v as readonly unknown[];
}

const L = ADVERT_LIMITS;

function parseGpu(v: unknown, field: string): AdvertGpu {
  const g = record(v, GPU_FIELDS, field);
  const gpu: AdvertGpu = {
    index: number(g['index'], `${field}.index`, 0, L.maxGpuIndex, true),
    name: text(g['name'], `${field}.name`, L.maxGpuNameChars),
    memoryTotalMiB: nullableNumber(g['memoryTotalMiB'], `${field}.memoryTotalMiB`, 0, L.maxGpuMemMiB, false),
    memoryUsedMiB: nullableNumber(g['memoryUsedMiB'], `${field}.memoryUsedMiB`, 0, L.maxGpuMemMiB, false),
    utilizationPct: nullableNumber(g['utilizationPct'], `${field}.utilizationPct`, 0, 100, false),
    temperatureC: nullableNumber(g['temperatureC'], `${field}.temperatureC`, L.minTempC, L.maxTempC, false),
    powerDrawW: nullableNumber(g['powerDrawW'], `${field}.powerDrawW`, 0, L.maxGpuPowerW, false),
    powerLimitW: nullableNumber(g['powerLimitW'], `${field}.powerLimitW`, 0, L.maxGpuPowerW, false),
  };
  return gpu;
}

function parseStrict(v: unknown): AdvertBody {
  const r = record(v, ADVERT_FIELDS, '', OPTIONAL_FIELDS);
  const models = array(r['models'], 'models', L.maxModels).map((m, i) => text(m, `models[${i}]`, L.maxModelChars));
  if (new Set(models).size !== models.length) throw new Reject('duplicate', 'models', 'model ids must be unique');
  const gpus = array(r['gpus'], 'gpus', L.maxGpus).map((g, i) => parseGpu(g, `gpus[${i}]`));
  if (new Set(gpus.map((g) => g.index)).size !== gpus.length) throw new Reject('duplicate', 'gpus', 'GPU indexes must be unique');
  const p = record(r['power'], POWER_FIELDS, 'power');
  const source = p['source'];
  if (source !== null && source !== 'ac' && source !== 'battery') throw new Reject('wrong-type', 'power.source', "expected 'ac', 'battery' or null");
  const charging = p['charging'];
  if (charging !== null && typeof charging !== 'boolean') throw new Reject('wrong-type', 'power.charging', 'expected a boolean or null');
  const memUsedBytes = nullableNumber(r['memUsedBytes'], 'memUsedBytes', 0, L.maxMemBytes, true);
  const memTotalBytes = nullableNumber(r['memTotalBytes'], 'memTotalBytes', 0, L.maxMemBytes, true);
  if (memUsedBytes !== null && memTotalBytes !== null && memUsedBytes > memTotalBytes) throw new Reject('inconsistent', 'memUsedBytes', 'more memory used than total');
  const profile = r['profile'];
  if (!isPowerProfile(profile)) throw new Reject('wrong-type', 'profile', 'expected eco, balanced, boost or turbo');
  const pinned = r['profilePinned'];
  if (typeof pinned !== 'boolean') throw new Reject('wrong-type', 'profilePinned', 'expected a boolean');
  let apiUrl: string | null = null;
  if (r['apiUrl'] !== null) {
    apiUrl = text(r['apiUrl'], 'apiUrl', L.maxApiUrlChars);
    let u: URL;
    try {
      u = new URL(apiUrl);
    } catch {
      throw new Reject('wrong-type', 'apiUrl', 'not a URL');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Reject('wrong-type', 'apiUrl', 'must be an http or https URL');
  }
  return {
    models,
    inFlight: number(r['inFlight'], 'inFlight', 0, L.maxRequests, true),
    queued: number(r['queued'], 'queued', 0, L.maxRequests, true),
    capacity: number(r['capacity'], 'capacity', 0, L.maxRequests, true),
    gpus,
    cpuLoad: nullableNumber(r['cpuLoad'], 'cpuLoad', 0, L.maxCpuLoad, false),
    memUsedBytes,
    memTotalBytes,
    power: { source, batteryPct: nullableNumber(p['batteryPct'], 'power.batteryPct', 0, 100, false), charging },
    cpuPackageW: nullableNumber(r['cpuPackageW'], 'cpuPackageW', 0, L.maxCpuPackageW, false),
    profile,
    profilePinned: pinned,
    apiUrl,
    tokensPerS: r['tokensPerS'] === undefined ? null : nullableNumber(r['tokensPerS'], 'tokensPerS', 0, L.maxTokensPerS, false),
    joulesPerToken: r['joulesPerToken'] === undefined ? null : nullableNumber(r['joulesPerToken'], 'joulesPerToken', 0, L.maxJoulesPerToken, false),
    ...(r['addrs'] === undefined ? {} : { addrs: parseAddrs(r['addrs']) }),
  };
}

/** Dialable addresses, canonical (a garbage or wildcard address rejects the whole advert: it is signed, so it is the peer's own garbage). */
function parseAddrs(v: unknown): string[] {
  const list = array(v, 'addrs', ADDRS_PER_PEER_MAX);
  const out: string[] = [];
  list.forEach((a, i) => {
    const c = checkDialAddr(a);
    if (!c.ok) throw new Reject('wrong-type', `addrs[${i}]`, c.reason);
    if (c.addr !== a) throw new Reject('wrong-type', `addrs[${i}]`, `not canonical: expected ${c.addr}`);
    if (out.includes(c.addr)) throw new Reject('duplicate', 'addrs', 'addresses must be unique');
    out.push(c.addr);
  });
  return out;
}

/** Validate a decoded (untrusted) body. Never throws. */
export function parseAdvertBody(value: unknown): AdvertParse {
  try {
    return { ok: true, body: parseStrict(value) };
  } catch (err) {
    if (err instanceof Reject) return { ok: false, code: err.code, field: err.field, detail: err.detail };
    // Anything else is a bug in this parser, but a peer's bytes must still never crash us.
    return { ok: false, code: 'wrong-type', field: '', detail: `unparseable body: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** Exactly the advert's GPU fields of a reading (a probe's reading carries more, e.g. uuid). */
export function toAdvertGpu(g: AdvertGpu): AdvertGpu {
  return {
    index: g.index,
    name: g.name,
    memoryTotalMiB: g.memoryTotalMiB,
    memoryUsedMiB: g.memoryUsedMiB,
    utilizationPct: g.utilizationPct,
    temperatureC: g.temperatureC,
    powerDrawW: g.powerDrawW,
    powerLimitW: g.powerLimitW,
  };
}

/**
 * This node's own body, checked and copied into a plain object with exactly the
 * schema's fields (extra properties of the caller's object are not carried), ready
 * for the envelope. Throws AdvertError: publishing an invalid advert is a local bug.
 */
export function encodeAdvertBody(body: AdvertBody): AdvertBody {
  const plain = {
    models: [...body.models],
    inFlight: body.inFlight,
    queued: body.queued,
    capacity: body.capacity,
    gpus: body.gpus.map(toAdvertGpu),
    cpuLoad: body.cpuLoad,
    memUsedBytes: body.memUsedBytes,
    memTotalBytes: body.memTotalBytes,
    power: { source: body.power.source, batteryPct: body.power.batteryPct, charging: body.power.charging },
    cpuPackageW: body.cpuPackageW,
    profile: body.profile,
    profilePinned: body.profilePinned,
    apiUrl: body.apiUrl,
    tokensPerS: body.tokensPerS,
    joulesPerToken: body.joulesPerToken,
    ...(body.addrs === undefined ? {} : { addrs: [...body.addrs] }),
  };
  const r = parseAdvertBody(plain);
  if (!r.ok) throw new AdvertError('ERR_ADVERT_INVALID', `invalid advert body: ${r.field}: ${r.detail}`, { reason: r.code, field: r.field });
  return r.body;
}
