import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CONFIG_FIELDS, defaultConfig, loadConfig, parseConfig } from '../../../node/config.js';
import { RuntimeError } from '../../../node/runtime/errors.js';

function fails(fn: () => unknown): RuntimeError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(RuntimeError);
    return e as RuntimeError;
  }
  throw new Error('expected a RuntimeError');
}

describe('config file', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('fills every default and documents every field', () => {
    const c = defaultConfig();
    expect(c.adverts).toEqual({ periodMs: 15_000, staleAfterPeriods: 3, goneAfterPeriods: 10 });
    expect(c.mdns.enabled).toBe(true);
    expect(c.control).toEqual({ host: '127.0.0.1', port: 0 });
    // every leaf of the defaults is documented, with the same default
    const leaves = (o: Record<string, unknown>, prefix = ''): Array<[string, unknown]> =>
      Object.entries(o).flatMap(([k, v]) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? leaves(v as Record<string, unknown>, `${prefix}${k}.`) : [[`${prefix}${k}`, v] as [string, unknown]]));
    const documented = new Map(CONFIG_FIELDS.map((f) => [f.path, f.default]));
    for (const [path, value] of leaves(c)) {
      expect(documented.has(path), `field ${path} documented`).toBe(true);
      expect(documented.get(path)).toEqual(value);
    }
  });

  it('reports corrupt JSON with the file and line:column', () => {
    const e = fails(() => parseConfig('{\n  "name": "a",\n  "listen": [,]\n}', '/d/config.json'));
    expect(e.code).toBe('ERR_CONFIG_PARSE');
    expect(e.message).toMatch(/^\/d\/config\.json:3:\d+: invalid JSON/);
  });

  it('rejects unknown fields naming their path', () => {
    const e = fails(() => parseConfig('{"adverts": {"periodMs": 500, "perodMs": 1}, "colour": "red"}', 'c.json'));
    expect(e.code).toBe('ERR_CONFIG_INVALID');
    expect(e.message).toContain('adverts.perodMs: unknown field');
    expect(e.message).toContain('colour: unknown field');
  });

  it('rejects bad values and inconsistent combinations with their path', () => {
    expect(fails(() => parseConfig('{"adverts": {"periodMs": "fast"}}', 'c.json')).message).toContain('adverts.periodMs');
    expect(fails(() => parseConfig('{"listen": ["tcp://1.2.3.4"]}', 'c.json')).message).toContain('listen[0]');
    expect(fails(() => parseConfig('{"api": {"host": "0.0.0.0"}}', 'c.json')).message).toContain('api.apiKey: required');
    expect(fails(() => parseConfig('{"control": {"host": "0.0.0.0"}}', 'c.json')).message).toContain('control.host');
    expect(fails(() => parseConfig('{"adverts": {"staleAfterPeriods": 5, "goneAfterPeriods": 5}}', 'c.json')).message).toContain('adverts.goneAfterPeriods');
  });

  it('loadConfig names a missing file', async () => {
    const d = await mkdtemp(join(tmpdir(), 'fednode-cfg-'));
    dirs.push(d);
    await expect(loadConfig(join(d, 'config.json'))).rejects.toMatchObject({ code: 'ERR_CONFIG_MISSING' });
    await writeFile(join(d, 'config.json'), '{"name": "x"');
    await expect(loadConfig(join(d, 'config.json'))).rejects.toMatchObject({ code: 'ERR_CONFIG_PARSE' });
  });
});
