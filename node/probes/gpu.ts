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

/**
 * Tokens nvidia-smi prints for a value it cannot read. Seen in recorded output
 * (test/fixtures/probes/nvidia-smi/real/): `[N/A]` and `[Not Supported]` (bracketed
 * in csv output since driver ~450), bare `N/A` (older drivers, and some fields of
 * current ones), `[Requested functionality has been deprecated]`, `[Unknown Error]`,
 * `ERR!`, and an empty cell (driver 580 for a field it leaves blank).
 */
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

/** What a query field becomes in a reading; `unit` is what `--format=csv` (without nounits) appends to the value and to the header. */
interface FieldSpec {
  readonly key: keyof GpuReading;
  readonly unit: 'MiB' | '%' | 'W' | null;
  readonly min: number;
  readonly max: number;
}

// Bounds: 16 TiB of memory, 0..100 %, -50..200 C and 0..10 kW are outside any real GPU.
const MEM: Omit<FieldSpec, 'key'> = { unit: 'MiB', min: 0, max: 16 * 1024 * 1024 };
/**
 * The `--query-gpu` properties a reading is made of, by their nvidia-smi names and
 * the aliases `nvidia-smi --help-query-gpu` documents (gpu_name, gpu_uuid). Other
 * properties in a query (recordings carry many) are read past.
 */
const FIELD_SPECS: ReadonlyMap<string, FieldSpec> = new Map<string, FieldSpec>([
  ['index', { key: 'index', unit: null, min: 0, max: 999 }],
  ['uuid', { key: 'uuid', unit: null, min: 0, max: 0 }],
  ['gpu_uuid', { key: 'uuid', unit: null, min: 0, max: 0 }],
  ['name', { key: 'name', unit: null, min: 0, max: 0 }],
  ['gpu_name', { key: 'name', unit: null, min: 0, max: 0 }],
  ['memory.total', { key: 'memoryTotalMiB', ...MEM }],
  ['memory.used', { key: 'memoryUsedMiB', ...MEM }],
  ['utilization.gpu', { key: 'utilizationPct', unit: '%', min: 0, max: 100 }],
  ['temperature.gpu', { key: 'temperatureC', unit: null, min: -50, max: 200 }],
  ['power.draw', { key: 'powerDrawW', unit: 'W', min: 0, max: 10_000 }],
  ['power.limit', { key: 'powerLimitW', unit: 'W', min: 0, max: 10_000 }],
]);

/** `--format=` options that change the text: `noheader` (header = false) and `nounits` (units = false). */
export interface NvidiaSmiFormat {
  readonly header: boolean;
  readonly units: boolean;
}

/** What the probe asks for: `csv,noheader,nounits`. */
export const NVIDIA_SMI_FORMAT: NvidiaSmiFormat = { header: false, units: false };

/**
 * One line's values for the fields a reading is made of. A key is absent when the
 * query did not ask for that field, null when nvidia-smi could not give it.
 */
export type GpuRow = { -readonly [K in keyof GpuReading]?: GpuReading[K] | null };

/**
 * Read one data line of a `--query-gpu` answer: `fields` in query order, values
 * separated by ", ". A GPU name may contain a comma; when the line has more cells than
 * fields and the query has a name, the extra cells belong to the name. With units,
 * a number carries its field's unit (`24564 MiB`, `7 %`, `28.53 W`); a number with
 * another or no unit is not trusted (null). A string is the reason the line is not a
 * GPU line.
 */
export function readNvidiaSmiRow(line: string, fields: readonly string[], format: Pick<NvidiaSmiFormat, 'units'>): GpuRow | string {
  let cells = line.split(',').map((p) => p.trim());
  const nameAt = fields.findIndex((f) => FIELD_SPECS.get(f)?.key === 'name');
  if (cells.length > fields.length && nameAt >= 0) {
    const extra = cells.length - fields.length;
    cells = [...cells.slice(0, nameAt), cells.slice(nameAt, nameAt + extra + 1).join(', '), ...cells.slice(nameAt + extra + 1)];
  }
  if (cells.length !== fields.length) return `expected ${fields.length} fields, got ${cells.length}`;
  const row: GpuRow = {};
  for (const [i, field] of fields.entries()) {
    const spec = FIELD_SPECS.get(field);
    if (spec === undefined) continue;
    const text = cells[i] ?? '';
    switch (spec.key) {
      case 'index':
        // a line whose first field is not a GPU index is noise (a warning, a truncated line)
        if (!/^\d{1,3}$/.test(text)) return `index is not a small integer: ${JSON.stringify(text.slice(0, 20))}`;
        row.index = Number(text);
        break;
      case 'uuid':
        row.uuid = isUnavailableToken(text) ? null : text.slice(0, 64);
        break;
      case 'name':
        row.name = isUnavailableToken(text) ? null : text.slice(0, MAX_GPU_NAME_CHARS);
        break;
      default: {
        let t = text;
        if (format.units && spec.unit !== null && !isUnavailableToken(t)) {
          t = t.endsWith(` ${spec.unit}`) ? t.slice(0, -spec.unit.length - 1) : 'unit?';
        }
        row[spec.key] = num(t, spec.min, spec.max);
      }
    }
  }
  return row;
}

/** Header cell -> field name: `memory.total [MiB]` -> `memory.total`, with its unit. */
function headerField(cell: string): { field: string; unit: string | null } {
  const m = /^(.*?)\s*\[([^\]]+)\]$/.exec(cell.trim());
  return m === null ? { field: cell.trim(), unit: null } : { field: m[1]!, unit: m[2]! };
}

export interface NvidiaSmiTable {
  /** Field names, from the header when there is one, else as given. */
  readonly fields: readonly string[];
  readonly rows: GpuRow[];
  readonly skipped: SkippedLine[];
}

/**
 * Parse any `--query-gpu=<fields> --format=csv[,noheader][,nounits]` answer (the probe's
 * own query, or a recording of someone else's). With a header the field names come
 * from it (and must agree with `fields` when both are given); without one `fields` is
 * required. Rows are bounded by MAX_GPUS, skipped lines by MAX_SKIPPED.
 */
export function parseNvidiaSmiQuery(text: string, format: NvidiaSmiFormat, fields: readonly string[] | null = null): NvidiaSmiTable {
  const rows: GpuRow[] = [];
  const skipped: SkippedLine[] = [];
  const skip = (line: string, reason: string): void => {
    if (skipped.length < MAX_SKIPPED) skipped.push({ line: line.slice(0, 200), reason });
  };
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  let names = fields;
  if (format.header) {
    const head = lines.shift();
    const parsed = (head ?? '').split(',').map(headerField);
    const fromHeader = parsed.map((h) => h.field);
    const badUnit = parsed.find((h) => h.unit !== null && FIELD_SPECS.get(h.field)?.unit != null && FIELD_SPECS.get(h.field)?.unit !== h.unit);
    if (head === undefined || (fields !== null && fromHeader.join(',') !== fields.join(','))) {
      return { fields: fields ?? [], rows, skipped: head === undefined ? [] : [{ line: head.slice(0, 200), reason: 'header does not match the query' }] };
    }
    if (badUnit !== undefined) return { fields: fromHeader, rows, skipped: [{ line: head.slice(0, 200), reason: `unexpected unit [${badUnit.unit}] for ${badUnit.field}` }] };
    names = fromHeader;
  }
  if (names === null) throw new RangeError('parseNvidiaSmiQuery: fields are required when the output has no header');
  for (const line of lines) {
    const r = readNvidiaSmiRow(line, names, format);
    if (typeof r === 'string') skip(line, r);
    else if (rows.length >= MAX_GPUS) skip(line, `more than ${MAX_GPUS} GPUs`);
    else rows.push(r);
  }
  return { fields: names, rows, skipped };
}

/** Parse one csv,noheader,nounits line of the probe's query; a string is the reason it was skipped. */
export function parseNvidiaSmiLine(line: string): GpuReading | string {
  const r = readNvidiaSmiRow(line, NVIDIA_SMI_FIELDS, NVIDIA_SMI_FORMAT);
  if (typeof r === 'string') return r;
  if (r.name === null || r.name === undefined) return 'no GPU name';
  return {
    index: r.index ?? 0, // always present: index is the probe's first field
    uuid: r.uuid ?? null,
    name: r.name,
    memoryTotalMiB: r.memoryTotalMiB ?? null,
    memoryUsedMiB: r.memoryUsedMiB ?? null,
    utilizationPct: r.utilizationPct ?? null,
    temperatureC: r.temperatureC ?? null,
    powerDrawW: r.powerDrawW ?? null,
    powerLimitW: r.powerLimitW ?? null,
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

/** While nvidia-smi finds no GPU (not installed, no driver, no device), it is run this
 * rarely instead of on every hardware sample: on a machine without an NVIDIA GPU the
 * spawn every 2 s was the largest fednode-owned share of an idle node's CPU (bench idle).
 * A GPU that appears later (driver loaded after boot, eGPU plugged in) is seen within it. */
export const GPU_ABSENT_REPROBE_MS = 60_000;

/**
 * When the next nvidia-smi run is due: at every sample while the last probe found GPUs
 * (their power and temperature feed the advert), at most once per `absentReprobeMs`
 * while it found none. Pure (the caller passes the time).
 */
export class GpuProbeCadence {
  private noGpuSinceMs: number | null = null;
  constructor(private readonly absentReprobeMs: number = GPU_ABSENT_REPROBE_MS) {}
  /** Should the probe run at `nowMs`? */
  due(nowMs: number): boolean {
    return this.noGpuSinceMs === null || nowMs - this.noGpuSinceMs >= this.absentReprobeMs;
  }
  /** Record the result of a probe that ran at `nowMs`. */
  record(probe: GpuProbe, nowMs: number): void {
    this.noGpuSinceMs = probe.gpus === null ? nowMs : null;
  }
}
