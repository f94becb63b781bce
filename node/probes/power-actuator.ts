/**
 * Power profiles that act (opt-in, config `power.actuate: true`): on each profile change every
 * NVIDIA GPU gets the profile's power limit, clamped to its own power.min_limit..max_limit,
 * with `nvidia-smi -i N -pl W`; `restore()` puts back the limit each GPU had before the first
 * change (node stop). Setting a limit needs root: the first refusal is logged once, clearly,
 * and actuation stops; the node keeps serving.
 */
import type { Logger } from '../log.js';
import type { CommandRunner } from './command.js';
import { NVIDIA_SMI_MAX_BYTES } from './gpu.js';
import { probeGpuPower } from './gpu-power.js';
import type { GpuPowerReading } from './gpu-power.js';
import type { PowerProfile } from '../adverts/profile.js';

/** The design's per-profile limits (W): eco 100, balanced 200, boost 300, turbo 400. */
export const DEFAULT_POWER_LIMITS_W: Readonly<Record<PowerProfile, number>> = Object.freeze({ eco: 100, balanced: 200, boost: 300, turbo: 400 });

/** `nvidia-smi -pl` takes ~100 ms-1 s (it waits for the driver); 10 s means the driver hangs. */
const SET_LIMIT_TIMEOUT_MS = 10_000;

export type ActuatorState = 'idle' | 'active' | 'refused' | 'no-gpu';

export function clampLimit(wanted: number, g: GpuPowerReading): number {
  let w = wanted;
  if (g.minLimitW !== null) w = Math.max(w, g.minLimitW);
  if (g.maxLimitW !== null) w = Math.min(w, g.maxLimitW);
  return Math.round(w);
}

const isPermissionError = (text: string): boolean => /insufficient permissions|not permitted|permission denied|requires root|root privileges/i.test(text);

export class GpuPowerActuator {
  private original = new Map<number, number>();
  private applied = new Map<number, number>();
  private stateValue: ActuatorState = 'idle';
  private detailValue: string | null = null;
  /** One change at a time, in order (a profile flip while nvidia-smi runs waits for it). */
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly run: CommandRunner,
    private readonly limits: Readonly<Record<PowerProfile, number>>,
    private readonly log: Logger,
    private readonly binary = 'nvidia-smi',
  ) {}

  get state(): ActuatorState {
    return this.stateValue;
  }

  /** Why actuation is off (refused / no GPU), or the last error; null when fine. */
  get detail(): string | null {
    return this.detailValue;
  }

  /** The limit each GPU was set to (W), by index. */
  get appliedLimits(): ReadonlyMap<number, number> {
    return this.applied;
  }

  apply(profile: PowerProfile): Promise<void> {
    this.chain = this.chain.then(() => this.applyNow(profile)).catch((e: unknown) => this.log.warn('power limit change failed', { err: e }));
    return this.chain;
  }

  private async applyNow(profile: PowerProfile): Promise<void> {
    if (this.stateValue === 'refused' || this.stateValue === 'no-gpu') return;
    const probe = await probeGpuPower(this.run, this.binary);
    if (!probe.ok || probe.gpus.length === 0) {
      this.stateValue = 'no-gpu';
      this.detailValue = probe.ok ? 'nvidia-smi lists no GPU' : probe.reason;
      this.log.warn('power.actuate is on but no GPU power limit can be read: profiles stay labels', { reason: this.detailValue });
      return;
    }
    for (const g of probe.gpus) {
      if (g.powerLimitW !== null && !this.original.has(g.index)) this.original.set(g.index, g.powerLimitW);
      const target = clampLimit(this.limits[profile], g);
      if (this.applied.get(g.index) === target) continue;
      if (!(await this.setLimit(g.index, target))) return;
      this.applied.set(g.index, target);
      this.stateValue = 'active';
      this.log.info('GPU power limit set for profile', { gpu: g.index, profile, watts: target, wanted: this.limits[profile], min: g.minLimitW, max: g.maxLimitW });
    }
  }

  /** false when refused (then actuation is off for good). */
  private async setLimit(index: number, watts: number): Promise<boolean> {
    const r = await this.run(this.binary, ['-i', String(index), '-pl', String(watts)], { timeoutMs: SET_LIMIT_TIMEOUT_MS, maxBytes: NVIDIA_SMI_MAX_BYTES });
    if (r.ok) return true;
    const text = `${r.detail} ${r.stdout}`;
    if (isPermissionError(text)) {
      this.stateValue = 'refused';
      const line = text.split('\n').find((l) => isPermissionError(l)) ?? text;
      this.detailValue = `nvidia-smi -pl needs root (${line.trim().slice(0, 200)})`;
      this.log.warn('power.actuate: setting GPU power limits was refused (run the node as root, or set power.actuate false); profiles stay labels, the node keeps serving', { detail: this.detailValue });
      return false;
    }
    this.detailValue = text.trim().slice(0, 300);
    this.log.warn('nvidia-smi -pl failed', { gpu: index, watts, detail: this.detailValue });
    return true;
  }

  /** Put back each GPU's limit from before the first change. */
  async restore(): Promise<void> {
    await this.chain;
    for (const [index, watts] of this.original) {
      if (this.applied.get(index) === undefined || this.applied.get(index) === watts) continue;
      const r = await this.run(this.binary, ['-i', String(index), '-pl', String(Math.round(watts))], { timeoutMs: SET_LIMIT_TIMEOUT_MS, maxBytes: NVIDIA_SMI_MAX_BYTES });
      if (r.ok) this.log.info('GPU power limit restored', { gpu: index, watts });
      else this.log.warn('GPU power limit could not be restored', { gpu: index, watts, detail: r.detail });
    }
    this.applied.clear();
  }
}
