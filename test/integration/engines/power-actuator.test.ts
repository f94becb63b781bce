// Power profiles that act, against a recording fake nvidia-smi on PATH (real child processes):
// the arguments and their order are checked, limits are clamped per GPU, the originals are
// restored, and a refusal without root is logged once and stops actuation.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileRunner } from '../../../node/probes/command.js';
import { GpuPowerActuator, DEFAULT_POWER_LIMITS_W } from '../../../node/probes/power-actuator.js';
import type { Logger, LogData } from '../../../node/log.js';

const FAKE_DIR = join(import.meta.dirname, '..', '..', 'fixtures', 'engines', 'fake-nvidia-smi');
const saved = { PATH: process.env['PATH'], LOG: process.env['FAKE_NVSMI_LOG'] };
let log: string;

function recorder(): { logger: Logger; lines: Array<{ level: string; msg: string; data?: LogData }> } {
  const lines: Array<{ level: string; msg: string; data?: LogData }> = [];
  const mk = (level: string) => (msg: string, data?: LogData) => void lines.push({ level, msg, ...(data !== undefined ? { data } : {}) });
  const logger: Logger = { debug: mk('debug'), info: mk('info'), warn: mk('warn'), error: mk('error'), child: () => logger };
  return { logger, lines };
}
const calls = (): string[] => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);
const QUERY = '--query-gpu=index,power.limit,power.min_limit,power.max_limit,clocks_event_reasons.sw_thermal_slowdown,clocks_event_reasons.hw_thermal_slowdown --format=csv,noheader,nounits';

beforeEach(() => {
  log = join(mkdtempSync(join(tmpdir(), 'fednode-nvsmi-')), 'calls.log');
  process.env['PATH'] = `${FAKE_DIR}:${saved.PATH ?? ''}`;
  process.env['FAKE_NVSMI_LOG'] = log;
  delete process.env['FAKE_NVSMI_DENY'];
  delete process.env['FAKE_NVSMI_LEGACY'];
});
afterEach(() => {
  process.env['PATH'] = saved.PATH;
  process.env['FAKE_NVSMI_LOG'] = saved.LOG;
  delete process.env['FAKE_NVSMI_DENY'];
  delete process.env['FAKE_NVSMI_LEGACY'];
});

describe('GpuPowerActuator (fake nvidia-smi on PATH)', () => {
  it('sets each GPU to the profile limit clamped to its range, only on change, and restores the originals', async () => {
    const { logger } = recorder();
    const a = new GpuPowerActuator(execFileRunner, DEFAULT_POWER_LIMITS_W, logger);
    await a.apply('eco'); // 100 W: GPU 0 min 150, GPU 1 min 100
    expect(calls()).toEqual([QUERY, '-i 0 -pl 150', '-i 1 -pl 100']);
    expect(a.state).toBe('active');
    await a.apply('turbo'); // 400 W: GPU 0 max 450 -> 400, GPU 1 max 250 -> 250
    expect(calls().slice(3)).toEqual([QUERY, '-i 0 -pl 400', '-i 1 -pl 250']);
    await a.apply('turbo'); // no change: query only
    expect(calls().slice(6)).toEqual([QUERY]);
    await a.restore(); // the limits before the first change: 350 and 250 (GPU 1 already there)
    expect(calls().slice(7)).toEqual(['-i 0 -pl 350']);
  });

  it('without root: refuses clearly once, then never calls -pl again', async () => {
    process.env['FAKE_NVSMI_DENY'] = '1';
    const { logger, lines } = recorder();
    const a = new GpuPowerActuator(execFileRunner, DEFAULT_POWER_LIMITS_W, logger);
    await a.apply('boost');
    await a.apply('eco');
    await a.apply('turbo');
    expect(calls()).toEqual([QUERY, '-i 0 -pl 300']);
    expect(a.state).toBe('refused');
    expect(a.detail).toMatch(/needs root.*Insufficient Permissions/);
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(1);
    expect(lines.find((l) => l.level === 'warn')?.msg).toMatch(/refused .*keeps serving/);
    await a.restore();
    expect(calls()).toHaveLength(2); // nothing was changed, nothing to restore
  });

  it('an old driver: the query is retried with clocks_throttle_reasons', async () => {
    process.env['FAKE_NVSMI_LEGACY'] = '1';
    const a = new GpuPowerActuator(execFileRunner, DEFAULT_POWER_LIMITS_W, recorder().logger);
    await a.apply('balanced');
    const c = calls();
    expect(c[0]).toBe(QUERY);
    expect(c[1]).toMatch(/^--query-gpu=index,power\.limit,power\.min_limit,power\.max_limit,clocks_throttle_reasons\.sw_thermal_slowdown/);
    expect(c[2]).toBe('-i 0 -pl 200');
  });

  it('no nvidia-smi at all: says so once and does nothing', async () => {
    process.env['PATH'] = '/nonexistent';
    const { logger, lines } = recorder();
    const a = new GpuPowerActuator(execFileRunner, DEFAULT_POWER_LIMITS_W, logger);
    await a.apply('boost');
    await a.apply('eco');
    expect(a.state).toBe('no-gpu');
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(1);
  });
});
