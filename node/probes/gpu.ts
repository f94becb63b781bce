/**
 * GPU probe: `nvidia-smi --query-gpu=... --format=csv,noheader,nounits`.
 * A value nvidia-smi cannot give ([N/A], [Not Supported], ...) is null, never invented;
 * a line that does not have the expected shape is skipped with a reason; a machine
 * without nvidia-smi has no NVIDIA GPU (gpus: null), which is not an error.
 */
import type { CommandResult, CommandRunner } from './command.js';

export const NVIDIA_SMI_FIELDS = [
  'index',
  'uuid',
  'name',
  'memory.total',
  'memory.used',
  'utilization.gpu',
  'temperature.gpu',
  'power.draw',
  'power.limit',
] as const;

export const NVIDIA_SMI_ARGS: readonly string[] = [`--query-gpu=${NVIDIA_SMI_FIELDS.join(',')}`, '--format=csv,noheader,nounits'];

export interface GpuReading {
  readonly index: number;
  readonly uuid: string | null;
  readonly name: string;
  readonly memoryTotalMiB: number | null;
  readonly memoryUsedMiB: number | null;
  readonly utilizationPct: number | null;
  readonly temperatureC: number | null;
  readonly powerDrawW: number | null;
  readonly powerLimitW: number | null;
}

export interface SkippedLine {
  readonly line: string;
  readonly reason: string;
}

export interface NvidiaSmiParse {
  readonly gpus: GpuReading[];
  readonly skipped: SkippedLine[];
}

/** More GPUs than this in one host is not a home lab; also bounds the advert (see advert.ts). */
export const MAX_GPUS = 16;
/** A GPU name longer than this is cut (advert bound is the same). */
export const MAX_GPU_NAME_CHARS = 128;
/** Lines kept in `skipped` (a broken driver can print pages of noise). */
const MAX_SKIPPED = 8;
/** Bound on nvidia-smi output: 16 GPUs x ~200 bytes is ~3 KiB; 64 KiB leaves room for warnings. */
export const NVIDIA_SMI_MAX_BYTES = 64 * 1024;
/** nvidia-smi answers in ~50-300 ms; a hung driver can block it for minutes. */
export const NVIDIA_SMI_TIMEOUT_MS = 3_000;

/** Tokens nvidia-smi prints for a value it cannot read ([N/A], [Not Supported], [Unknown Error], ERR!, ...). */
function isUnavailableToken(t: string): boolean {
  return t === '' || t === 'N/A' || t === 'ERR!' || (t.startsWith('[') && t.endsWith(']'));
}

/** A number, or null when unavailable, not a finite number, or outside [min, max]. */
function num(token: string, min: number, max: number): number | null {
  const t = token.trim();
  if (isUnavailableToken(t)) return null;
  if (!/^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(t)) return null;
  const v = Number(t);
  if (!Number.isFinite(v) || v < min || v > max) return null;
  return v;
}

/** Parse one csv,noheader,nounits line; a string is the reason it was skipped. */
export function parseNvidiaSmiLine(line: string): GpuReading | string {
  const parts = line.split(',').map((p) => p.trim());
  // A GPU name could in principle contain a comma: the first two and last six fields are fixed.
  if (parts.length < NVIDIA_SMI_FIELDS.length) return `expected ${NVIDIA_SMI_FIELDS.length} fields, got ${parts.length}`;
  const tail = parts.slice(parts.length - 6);
  const indexText = parts[0] ?? '';
  if (!/^\d{1,3}$/.test(indexText)) return `index is not a small integer: ${JSON.stringify(indexText.slice(0, 20))}`;
  const uuidText = parts[1] ?? '';
  const name = parts.slice(2, parts.length - 6).join(', ');
  if (name === '' || isUnavailableToken(name)) return 'no GPU name';
  const [memTotal = '', memUsed = '', util = '', temp = '', draw = '', limit = ''] = tail;
  return {
    index: Number(indexText),
    uuid: isUnavailableToken(uuidText) ? null : uuidText.slice(0, 64),
    name: name.slice(0, MAX_GPU_NAME_CHARS),
    // Bounds: 16 TiB of memory, 0..100 %, -50..200 C and 0..10 kW are outside any real GPU.
    memoryTotalMiB: num(memTotal, 0, 16 * 1024 * 1024),
    memoryUsedMiB: num(memUsed, 0, 16 * 1024 * 1024),
    utilizationPct: num(util, 0, 100),
    temperatureC: num(temp, -50, 200),
    powerDrawW: num(draw, 0, 10_000),
    powerLimitW: num(limit, 0, 10_000),
  };
}

/** Parse the whole output; blank lines are ignored, other bad lines skipped with a reason. */
export function parseNvidiaSmiCsv(text: string): NvidiaSmiParse {
  const gpus: GpuReading[] = [];
  const skipped: SkippedLine[] = [];
  const seen = new Set<number>();
  const skip = (line: string, reason: string): void => {
    if (skipped.length < MAX_SKIPPED) skipped.push({ line: line.slice(0, 200), reason });
  };
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '') continue;
    const r = parseNvidiaSmiLine(line);
    if (typeof r === 'string') skip(line, r);
    else if (seen.has(r.index)) skip(line, `duplicate GPU index ${r.index}`);
    else if (gpus.length >= MAX_GPUS) skip(line, `more than ${MAX_GPUS} GPUs`);
    else {
      seen.add(r.index);
      gpus.push(r);
    }
  }
  gpus.sort((a, b) => a.index - b.index);
  return { gpus, skipped };
}

export interface GpuProbe {
  /** null: no NVIDIA GPU, or nvidia-smi could not be read (see reason). [] never happens: no GPU is null. */
  readonly gpus: GpuReading[] | null;
  /** Why gpus is null, or why some lines were dropped; null when everything read cleanly. */
  readonly reason: string | null;
  readonly skipped: readonly SkippedLine[];
}

export interface GpuProbeOptions {
  /** Binary to run. @default 'nvidia-smi' (found on PATH) */
  readonly binary?: string;
  /** @default NVIDIA_SMI_TIMEOUT_MS */
  readonly timeoutMs?: number;
  /** @default NVIDIA_SMI_MAX_BYTES */
  readonly maxBytes?: number;
}

export async function probeGpus(run: CommandRunner, opts: GpuProbeOptions = {}): Promise<GpuProbe> {
  const binary = opts.binary ?? 'nvidia-smi';
  let r: CommandResult;
  try {
    r = await run(binary, NVIDIA_SMI_ARGS, { timeoutMs: opts.timeoutMs ?? NVIDIA_SMI_TIMEOUT_MS, maxBytes: opts.maxBytes ?? NVIDIA_SMI_MAX_BYTES });
  } catch (err) {
    // An injected runner should not throw; if one does, the probe still reports instead of failing.
    return { gpus: null, reason: `error: ${err instanceof Error ? err.message : String(err)}`, skipped: [] };
  }
  if (!r.ok) {
    if (r.reason === 'not-found') return { gpus: null, reason: 'no NVIDIA GPU (nvidia-smi not found)', skipped: [] };
    // nvidia-smi exits non-zero with a one-line explanation ("No devices were found",
    // "couldn't communicate with the NVIDIA driver"): report it, read nothing.
    const firstLine = r.stdout.trim().split(/\r?\n/)[0]?.slice(0, 200) ?? '';
    return { gpus: null, reason: `${r.reason}: ${r.detail}${firstLine !== '' ? ` (${firstLine})` : ''}`, skipped: [] };
  }
  const parsed = parseNvidiaSmiCsv(r.stdout);
  if (parsed.gpus.length === 0) {
    const why = parsed.skipped[0] !== undefined ? `no GPU line parsed (${parsed.skipped[0].reason})` : 'no NVIDIA GPU (empty nvidia-smi output)';
    return { gpus: null, reason: why, skipped: parsed.skipped };
  }
  return { gpus: parsed.gpus, reason: parsed.skipped.length > 0 ? `${parsed.skipped.length} line(s) skipped` : null, skipped: parsed.skipped };
}
