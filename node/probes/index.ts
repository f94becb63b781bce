/**
 * All hardware probes behind one call. Every reading that fails is null with a
 * reason (shown by `fednode doctor`), never an exception and never a guess.
 */
import { execFileRunner, type CommandRunner } from './command.js';
import { probeGpus, type GpuProbeOptions, type GpuReading, type SkippedLine } from './gpu.js';
import { POWER_SUPPLY_ROOT, probePowerSupply, type PowerSupplyReading } from './power-supply.js';
import { POWERCAP_ROOT, RaplMeter } from './rapl.js';
import { nodeSysfsReader, type SysfsReader } from './sysfs.js';
import { nodeSystemSource, readSystem, type SystemReading, type SystemSource } from './system.js';

export * from './command.js';
export * from './gpu.js';
export * from './power-supply.js';
export * from './rapl.js';
export * from './sysfs.js';
export * from './system.js';
export * from './gpu-power.js';
export * from './power-actuator.js';

export interface HardwareSnapshot {
  readonly atMs: number;
  readonly gpus: readonly GpuReading[] | null;
  readonly gpuReason: string | null;
  readonly gpuSkipped: readonly SkippedLine[];
  readonly power: PowerSupplyReading | null;
  readonly cpuPackageW: number | null;
  readonly cpuPackageReason: string | null;
  readonly system: SystemReading;
  /** Any GPU in a sw/hw thermal slowdown (gpu-power.ts); absent/null = not read. */
  readonly thermalThrottle?: boolean | null;
}

export interface HardwareProbeOptions {
  /** @default execFileRunner (real child process) */
  readonly runner?: CommandRunner;
  readonly gpu?: GpuProbeOptions;
  /** false disables the GPU probe (reports no GPU). @default true */
  readonly gpuEnabled?: boolean;
  /** @default nodeSysfsReader (real /sys) */
  readonly sysfs?: SysfsReader;
  /** @default '/sys/class/power_supply' */
  readonly powerSupplyRoot?: string;
  /** @default '/sys/class/powercap' */
  readonly powercapRoot?: string;
  /** @default nodeSystemSource (node:os) */
  readonly system?: SystemSource;
}

export interface HardwareProbe {
  /** Read everything once; `nowMs` timestamps the RAPL sample (watts are averaged since the previous call). */
  read(nowMs: number): Promise<HardwareSnapshot>;
}

export function createHardwareProbe(opts: HardwareProbeOptions = {}): HardwareProbe {
  const runner = opts.runner ?? execFileRunner;
  const sysfs = opts.sysfs ?? nodeSysfsReader;
  const system = opts.system ?? nodeSystemSource;
  const rapl = new RaplMeter(sysfs, opts.powercapRoot ?? POWERCAP_ROOT);
  const psRoot = opts.powerSupplyRoot ?? POWER_SUPPLY_ROOT;
  return {
    async read(nowMs) {
      const gpuP = opts.gpuEnabled === false ? Promise.resolve({ gpus: null, reason: 'GPU probe disabled', skipped: [] }) : probeGpus(runner, opts.gpu);
      const [gpu, power, cpu] = await Promise.all([gpuP, probePowerSupply(sysfs, psRoot), rapl.sample(nowMs)]);
      return {
        atMs: nowMs,
        gpus: gpu.gpus,
        gpuReason: gpu.reason,
        gpuSkipped: gpu.skipped,
        power,
        cpuPackageW: cpu.watts,
        cpuPackageReason: cpu.reason,
        system: readSystem(system),
      };
    },
  };
}
