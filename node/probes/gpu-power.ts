/**
 * GPU power limits and thermal throttling, read with
 *   nvidia-smi --query-gpu=index,power.limit,power.min_limit,power.max_limit,
 *     clocks_event_reasons.sw_thermal_slowdown,clocks_event_reasons.hw_thermal_slowdown
 *     --format=csv,noheader,nounits
 * Drivers before 535 know the reasons as `clocks_throttle_reasons.*` (the names were changed,
 * the old ones refused by some newer builds), so a refused query is retried with those.
 * Values nvidia-smi cannot give are null; a throttle reason is "Active" / "Not Active".
 */
import type { CommandRunner } from './command.js';
import { NVIDIA_SMI_MAX_BYTES, NVIDIA_SMI_TIMEOUT_MS, MAX_GPUS } from './gpu.js';

export interface GpuPowerReading {
  readonly index: number;
  readonly powerLimitW: number | null;
  readonly minLimitW: number | null;
  readonly maxLimitW: number | null;
  /** Software or hardware thermal slowdown active now; null when not reported. */
  readonly thermalThrottle: boolean | null;
}

const EVENT_FIELDS = ['clocks_event_reasons.sw_thermal_slowdown', 'clocks_event_reasons.hw_thermal_slowdown'] as const;
const THROTTLE_FIELDS = ['clocks_throttle_reasons.sw_thermal_slowdown', 'clocks_throttle_reasons.hw_thermal_slowdown'] as const;
const BASE_FIELDS = ['index', 'power.limit', 'power.min_limit', 'power.max_limit'] as const;

export function gpuPowerArgs(legacy: boolean): string[] {
  return [`--query-gpu=${[...BASE_FIELDS, ...(legacy ? THROTTLE_FIELDS : EVENT_FIELDS)].join(',')}`, '--format=csv,noheader,nounits'];
}

function watts(t: string | undefined): number | null {
  if (t === undefined) return null;
  const v = t.trim().replace(/\s*W$/, '');
  if (!/^\d+(\.\d+)?$/.test(v)) return null;
  const n = Number(v);
  return n > 0 && n <= 10_000 ? n : null; // 10 kW is outside any real GPU
}

function reason(t: string | undefined): boolean | null {
  const v = (t ?? '').trim();
  if (v === 'Active') return true;
  if (v === 'Not Active') return false;
  return null;
}

/**
 * Parse an answer. `header` = the text starts with a header line naming the fields (recordings);
 * otherwise the fields are `fields` in order. Lines of another shape are skipped.
 */
export function parseGpuPower(text: string, fields: readonly string[] | null): GpuPowerReading[] {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  let names = fields;
  if (names === null) {
    const head = lines.shift();
    if (head === undefined) return [];
    names = head.split(',').map((h) => h.trim().replace(/\s*\[[^\]]*\]$/, ''));
  }
  const col = (n: string): number => names.indexOf(n);
  const at = (cells: string[], ...alts: string[]): string | undefined => {
    for (const a of alts) {
      const i = col(a);
      if (i >= 0) return cells[i];
    }
    return undefined;
  };
  const out: GpuPowerReading[] = [];
  for (const line of lines) {
    if (out.length >= MAX_GPUS) break;
    const cells = line.split(',').map((c) => c.trim());
    if (cells.length !== names.length) continue;
    const idx = Number(at(cells, 'index'));
    if (!Number.isInteger(idx) || idx < 0 || idx > 999) continue;
    const sw = reason(at(cells, EVENT_FIELDS[0], THROTTLE_FIELDS[0]));
    const hw = reason(at(cells, EVENT_FIELDS[1], THROTTLE_FIELDS[1]));
    out.push({
      index: idx,
      powerLimitW: watts(at(cells, 'power.limit')),
      minLimitW: watts(at(cells, 'power.min_limit')),
      maxLimitW: watts(at(cells, 'power.max_limit')),
      thermalThrottle: sw === true || hw === true ? true : sw === null && hw === null ? null : false,
    });
  }
  return out;
}

export type GpuPowerProbe = { ok: true; gpus: GpuPowerReading[] } | { ok: false; reason: string };

/** Query limits and throttle reasons (retrying with the pre-535 field names when refused). */
export async function probeGpuPower(run: CommandRunner, binary = 'nvidia-smi'): Promise<GpuPowerProbe> {
  const opts = { timeoutMs: NVIDIA_SMI_TIMEOUT_MS, maxBytes: NVIDIA_SMI_MAX_BYTES };
  let r = await run(binary, gpuPowerArgs(false), opts);
  let legacy = false;
  if (!r.ok && r.reason === 'exit') {
    legacy = true;
    r = await run(binary, gpuPowerArgs(true), opts);
  }
  if (!r.ok) return { ok: false, reason: r.detail };
  const fields = gpuPowerArgs(legacy)[0]!.slice('--query-gpu='.length).split(',');
  return { ok: true, gpus: parseGpuPower(r.stdout, fields) };
}
