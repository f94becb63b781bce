import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { execFileRunner, type CommandRunner } from '../../../node/probes/command.js';
import { GPU_ABSENT_REPROBE_MS, GpuProbeCadence, MAX_GPUS, NVIDIA_SMI_ARGS, NVIDIA_SMI_FIELDS, NVIDIA_SMI_FORMAT, parseNvidiaSmiCsv, parseNvidiaSmiLine, parseNvidiaSmiQuery, probeGpus } from '../../../node/probes/gpu.js';
import type { GpuRow, NvidiaSmiFormat } from '../../../node/probes/gpu.js';

const fixture = (name: string): string => readFileSync(fileURLToPath(new URL(`../../fixtures/probes/nvidia-smi/${name}`, import.meta.url)), 'utf8');

/** Plays back a recorded output, checking that the probe asks nvidia-smi the documented query. */
function recorded(name: string): CommandRunner {
  return (file, args, opts) => {
    expect(file).toBe('nvidia-smi');
    expect(args).toEqual(NVIDIA_SMI_ARGS);
    expect(opts.timeoutMs).toBeGreaterThan(0);
    expect(opts.maxBytes).toBeGreaterThan(0);
    return Promise.resolve({ ok: true, stdout: fixture(name) });
  };
}

describe('nvidia-smi parsing on recorded output', () => {
  it('asks for exactly the nine fields in csv,noheader,nounits', () => {
    expect(NVIDIA_SMI_ARGS).toEqual([
      '--query-gpu=index,uuid,name,memory.total,memory.used,utilization.gpu,temperature.gpu,power.draw,power.limit',
      '--format=csv,noheader,nounits',
    ]);
  });

  it('reads one RTX 4090 with every value', async () => {
    const p = await probeGpus(recorded('rtx4090.csv'));
    expect(p.reason).toBeNull();
    expect(p.gpus).toEqual([
      {
        index: 0,
        uuid: 'GPU-3f2b7c1e-8d4a-4b6e-9a1c-2e5f7d8b9c0a',
        name: 'NVIDIA GeForce RTX 4090',
        memoryTotalMiB: 24564,
        memoryUsedMiB: 1893,
        utilizationPct: 7,
        temperatureC: 41,
        powerDrawW: 28.53,
        powerLimitW: 450,
      },
    ]);
  });

  it('reads two A100s; a [N/A] power draw is null, the other GPU unaffected', async () => {
    const p = await probeGpus(recorded('a100x2-power-na.csv'));
    expect(p.gpus).toHaveLength(2);
    expect(p.gpus?.[0]).toMatchObject({ index: 0, name: 'NVIDIA A100-SXM4-80GB', memoryUsedMiB: 40523, utilizationPct: 87, powerDrawW: 312.45, powerLimitW: 400 });
    expect(p.gpus?.[1]).toMatchObject({ index: 1, memoryTotalMiB: 81920, memoryUsedMiB: 4, utilizationPct: 0, temperatureC: 33, powerDrawW: null, powerLimitW: 400 });
    expect(p.skipped).toEqual([]);
  });

  it('laptop GPU: [Not Supported] power draw and limit are null, not zero', async () => {
    const p = await probeGpus(recorded('laptop-not-supported.csv'));
    expect(p.gpus?.[0]).toMatchObject({ name: 'NVIDIA GeForce RTX 3060 Laptop GPU', memoryTotalMiB: 6144, temperatureC: 46, powerDrawW: null, powerLimitW: null });
  });

  it('reads an H200 line', async () => {
    const p = await probeGpus(recorded('h200.csv'));
    expect(p.gpus).toEqual([
      { index: 0, uuid: 'GPU-a1b2c3d4-e5f6-4789-8abc-def012345678', name: 'NVIDIA H200', memoryTotalMiB: 143771, memoryUsedMiB: 0, utilizationPct: 0, temperatureC: 29, powerDrawW: 76.12, powerLimitW: 700 },
    ]);
  });

  it('bare N/A fields (GPU fallen off the bus) are null; its name and memory total stay', async () => {
    const p = await probeGpus(recorded('t4x2-plain-na.csv'));
    expect(p.gpus?.[1]).toEqual({
      index: 1,
      uuid: 'GPU-5f4e3d2c-1b0a-4988-b776-655443322110',
      name: 'Tesla T4',
      memoryTotalMiB: 15360,
      memoryUsedMiB: null,
      utilizationPct: null,
      temperatureC: null,
      powerDrawW: null,
      powerLimitW: null,
    });
  });

  it('skips a warning line and a truncated line with reasons, keeps the good line', async () => {
    const p = await probeGpus(recorded('rtx3090-with-garbage.csv'));
    expect(p.gpus?.map((g) => g.index)).toEqual([0]);
    expect(p.gpus?.[0]).toMatchObject({ memoryUsedMiB: 23011, utilizationPct: 99, temperatureC: 78 });
    expect(p.skipped).toHaveLength(2);
    expect(p.skipped[0]?.line).toContain('infoROM');
    expect(p.skipped[0]?.reason).toMatch(/expected 9 fields, got 1/);
    expect(p.skipped[1]?.reason).toMatch(/expected 9 fields, got 4/);
    expect(p.reason).toBe('2 line(s) skipped');
  });

  it('"No devices were found" (exit 6) is no GPU with the reason, not an error', async () => {
    const run: CommandRunner = () => Promise.resolve({ ok: false, reason: 'exit', detail: 'nvidia-smi: exit code 6', stdout: fixture('no-devices.txt') });
    const p = await probeGpus(run);
    expect(p.gpus).toBeNull();
    expect(p.reason).toContain('No devices were found');
  });

  it('the same text with exit 0 also gives null (the line is skipped, never a GPU)', async () => {
    const run: CommandRunner = () => Promise.resolve({ ok: true, stdout: fixture('no-devices.txt') });
    const p = await probeGpus(run);
    expect(p.gpus).toBeNull();
    expect(p.reason).toMatch(/no GPU line parsed/);
  });

  it('empty output is no GPU', async () => {
    const p = await probeGpus(() => Promise.resolve({ ok: true, stdout: '\n' }));
    expect(p).toEqual({ gpus: null, reason: 'no NVIDIA GPU (empty nvidia-smi output)', skipped: [] });
  });

  it('missing binary (ENOENT) is "no NVIDIA GPU", timeout is null with its reason', async () => {
    const missing = await probeGpus(() => Promise.resolve({ ok: false, reason: 'not-found', detail: 'x', stdout: '' }));
    expect(missing).toEqual({ gpus: null, reason: 'no NVIDIA GPU (nvidia-smi not found)', skipped: [] });
    const slow = await probeGpus(() => Promise.resolve({ ok: false, reason: 'timeout', detail: 'nvidia-smi: no answer within 3000 ms', stdout: '' }));
    expect(slow.gpus).toBeNull();
    expect(slow.reason).toMatch(/^timeout: .*3000 ms/);
  });

  it('a runner that throws still gives a result, not an exception', async () => {
    const p = await probeGpus(() => Promise.reject(new Error('spawn EAGAIN')));
    expect(p).toEqual({ gpus: null, reason: 'error: spawn EAGAIN', skipped: [] });
  });

  it('line-level rules: bad index, no name, unknown bracket tokens, out-of-range values', () => {
    expect(parseNvidiaSmiLine('x, GPU-1, A, 1, 1, 1, 1, 1, 1')).toMatch(/index/);
    expect(parseNvidiaSmiLine('0, GPU-1, [N/A], 1, 1, 1, 1, 1, 1')).toBe('no GPU name');
    const g = parseNvidiaSmiLine('0, [N/A], Some GPU, [Unknown Error], ERR!, 101, -60, 1e9, abc');
    expect(g).toEqual({ index: 0, uuid: null, name: 'Some GPU', memoryTotalMiB: null, memoryUsedMiB: null, utilizationPct: null, temperatureC: null, powerDrawW: null, powerLimitW: null });
  });

  it('a comma inside the GPU name is kept (fixed leading and trailing fields)', () => {
    const g = parseNvidiaSmiLine('0, GPU-1, Weird, Name, 8192, 1, 2, 30, 10.5, 100.00');
    expect(g).toMatchObject({ name: 'Weird, Name', memoryTotalMiB: 8192, powerLimitW: 100 });
  });

  it('duplicate indexes and more than MAX_GPUS lines are skipped (bounded)', () => {
    const lines = Array.from({ length: MAX_GPUS + 3 }, (_, i) => `${i}, GPU-${i}, G, 1, 1, 1, 1, 1, 1`);
    lines.push('0, GPU-dup, G, 1, 1, 1, 1, 1, 1');
    const r = parseNvidiaSmiCsv(lines.join('\r\n'));
    expect(r.gpus).toHaveLength(MAX_GPUS);
    expect(r.skipped.map((s) => s.reason)).toContain(`more than ${MAX_GPUS} GPUs`);
    expect(r.skipped.map((s) => s.reason)).toContain('duplicate GPU index 0');
  });
});

/**
 * A real recording (test/fixtures/probes/nvidia-smi/real/) with the query and format
 * read from its .source file, as the person who recorded it ran nvidia-smi.
 */
function realRecording(name: string): { text: string; fields: string[]; format: NvidiaSmiFormat } {
  const source = fixture(`real/${name}.source`);
  const command = /^command: (.*)$/m.exec(source)?.[1] ?? '';
  const fields = /--query-gpu=(\S+)/.exec(command)?.[1]?.split(',') ?? [];
  const opts = (/--format=(\S+)/.exec(command)?.[1] ?? '').split(',');
  expect(opts[0]).toBe('csv');
  expect(/^source: https:\/\/github\.com\//m.test(source)).toBe(true); // every recording names where it came from
  return { text: fixture(`real/${name}.csv`), fields, format: { header: !opts.includes('noheader'), units: !opts.includes('nounits') } };
}

describe('nvidia-smi parsing on REAL recorded output (sources in each .source file)', () => {
  const read = (name: string): { rows: GpuRow[]; skipped: unknown[] } => {
    const r = realRecording(name);
    const t = parseNvidiaSmiQuery(r.text, r.format, r.fields);
    return { rows: t.rows, skipped: t.skipped };
  };

  it('H200, driver 580.173.02 (Linux): full 214-field csv with header and units, every [N/A] / empty / deprecated cell read past', () => {
    const r = realRecording('h200-580.173.02-linux');
    expect(r.fields).toHaveLength(214);
    expect(r.format).toEqual({ header: true, units: true });
    const t = parseNvidiaSmiQuery(r.text, r.format, r.fields);
    expect(t.skipped).toEqual([]);
    expect(t.fields).toEqual(r.fields); // the header agrees with the query, field for field
    expect(t.rows).toEqual([
      { index: 0, uuid: 'GPU-00000000-0000-0000-0000-000000000000', name: 'NVIDIA H200', memoryTotalMiB: 143771, memoryUsedMiB: 0, utilizationPct: 0, temperatureC: 37, powerDrawW: 85.12, powerLimitW: 700 },
    ]);
  });

  it('Tesla P100 (netdata testdata): csv,nounits keeps unit names in the header only; no index, memory.total or power.limit queried', () => {
    const { rows, skipped } = read('tesla-p100-nounits');
    expect(skipped).toEqual([]);
    expect(rows).toEqual([{ name: 'Tesla P100-PCIE-16GB', uuid: 'GPU-ef1b2c9b-38d8-2090-2bd1-f567a3eb42a6', memoryUsedMiB: 0, utilizationPct: 0, temperatureC: 37, powerDrawW: 28.16 }]);
  });

  it('RTX 2080, driver 440.64: noheader,nounits with the gpu_uuid alias and a bare N/A (not one of ours) in the line', () => {
    const { rows, skipped } = read('rtx2080-440.64-noheader-nounits');
    expect(skipped).toEqual([]);
    expect(rows).toEqual([{ powerLimitW: 200, memoryTotalMiB: 7979, name: 'GeForce RTX 2080', uuid: 'GPU-22b2c6ac-2d49-4863-197c-9c469071178a', powerDrawW: 176.98, temperatureC: 45, utilizationPct: 86 }]);
  });

  it('GTX 770 on Windows: [Not Supported] power draw, power limit and utilisation are null, the temperature stays', () => {
    const { rows, skipped } = read('gtx770-windows-noheader-units');
    expect(skipped).toEqual([]);
    expect(rows).toEqual([{ name: 'GeForce GTX 770', utilizationPct: null, temperatureC: 52, powerDrawW: null, powerLimitW: null }]);
  });

  it('one 2 GiB GeForce before and after a driver upgrade ([Not Supported] became [N/A]): the same readings either way', () => {
    const before = read('geforce-2gb-old-driver-not-supported');
    const after = read('geforce-2gb-new-driver-na');
    const expected = [{ memoryTotalMiB: 2004, memoryUsedMiB: 0, temperatureC: 44, utilizationPct: 0 }];
    expect(before).toEqual({ rows: expected, skipped: [] });
    expect(after).toEqual({ rows: expected, skipped: [] });
  });

  it('a header that disagrees with the query, or a unit other than the field\'s, is refused with a reason (nothing read)', () => {
    const r = realRecording('h200-580.173.02-linux');
    const wrong = parseNvidiaSmiQuery(r.text, r.format, ['index', ...r.fields.slice(1)]);
    expect(wrong.rows).toEqual([]);
    expect(wrong.skipped[0]?.reason).toBe('header does not match the query');
    const gib = parseNvidiaSmiQuery('memory.total [GiB]\n140 GiB\n', { header: true, units: true });
    expect(gib.rows).toEqual([]);
    expect(gib.skipped[0]?.reason).toBe('unexpected unit [GiB] for memory.total');
    // with units on, a number without its unit is not trusted
    expect(parseNvidiaSmiQuery('name, power.draw [W]\nG, 85.12\n', { header: true, units: true }).rows).toEqual([{ name: 'G', powerDrawW: null }]);
    expect(() => parseNvidiaSmiQuery('0, G', { header: false, units: false })).toThrow(RangeError);
  });

  it('the probe\'s own format goes through the same row reader', () => {
    const line = '0, GPU-x, NVIDIA H200, 143771, 0, 0, 37, 85.12, 700.00';
    expect(parseNvidiaSmiQuery(line, NVIDIA_SMI_FORMAT, NVIDIA_SMI_FIELDS).rows).toEqual([parseNvidiaSmiLine(line)]);
  });
});

describe('execFileRunner (real child processes)', () => {
  it('a missing binary is not-found', async () => {
    const r = await execFileRunner('fednode-no-such-binary-xyz', [], { timeoutMs: 2000, maxBytes: 1024 });
    expect(r).toMatchObject({ ok: false, reason: 'not-found' });
  });

  it('returns stdout of a real command', async () => {
    const r = await execFileRunner(process.execPath, ['-e', 'process.stdout.write("0, GPU-x, G, 1, 2, 3, 4, 5, 6\\n")'], { timeoutMs: 10_000, maxBytes: 1024 });
    expect(r).toEqual({ ok: true, stdout: '0, GPU-x, G, 1, 2, 3, 4, 5, 6\n' });
  });

  it('a command that never answers is killed at the timeout', async () => {
    const r = await execFileRunner(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { timeoutMs: 300, maxBytes: 1024 });
    expect(r).toMatchObject({ ok: false, reason: 'timeout' });
  });

  it('output over the bound is refused', async () => {
    const r = await execFileRunner(process.execPath, ['-e', 'process.stdout.write("x".repeat(5000))'], { timeoutMs: 10_000, maxBytes: 1000 });
    expect(r).toMatchObject({ ok: false, reason: 'oversize' });
  });

  it('a non-zero exit keeps the output and the code', async () => {
    const r = await execFileRunner(process.execPath, ['-e', 'process.stdout.write("No devices were found\\n"); process.exit(6)'], { timeoutMs: 10_000, maxBytes: 1024 });
    expect(r).toMatchObject({ ok: false, reason: 'exit', stdout: 'No devices were found\n' });
    expect(!r.ok && r.detail).toMatch(/exit code 6/);
  });
});

describe('GPU probe cadence (idle cost: no nvidia-smi spawn every sample on a GPU-less node)', () => {
  const none = { gpus: null, reason: 'no NVIDIA GPU (nvidia-smi not found)', skipped: [] };
  it('probes every sample while GPUs answer, once per GPU_ABSENT_REPROBE_MS while none is found, and at once again after one appears', async () => {
    const missing: CommandRunner = () => Promise.resolve({ ok: false, reason: 'not-found', detail: 'nvidia-smi: not found', stdout: '' });
    const c = new GpuProbeCadence();
    expect(c.due(0)).toBe(true); // nothing known yet: probe
    c.record(await probeGpus(missing), 0);
    expect(c.due(2_000)).toBe(false);
    expect(c.due(GPU_ABSENT_REPROBE_MS - 1)).toBe(false);
    expect(c.due(GPU_ABSENT_REPROBE_MS)).toBe(true);
    const one = { gpus: [parseNvidiaSmiCsv(fixture('rtx4090.csv')).gpus[0]!], reason: null, skipped: [] };
    c.record(one, GPU_ABSENT_REPROBE_MS);
    expect(c.due(GPU_ABSENT_REPROBE_MS + 2_000)).toBe(true); // GPUs present: every sample
    c.record(none, GPU_ABSENT_REPROBE_MS + 2_000);
    expect(c.due(GPU_ABSENT_REPROBE_MS + 4_000)).toBe(false);
  });
  it('takes a shorter re-probe period', () => {
    const c = new GpuProbeCadence(5_000);
    c.record(none, 100);
    expect([c.due(5_099), c.due(5_100)]).toEqual([false, true]);
  });
});
