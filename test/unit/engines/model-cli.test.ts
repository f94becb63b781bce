// `fednode model tiny` and the engine flags, through the real CLI entry (in process).
import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../../cli/run.js';
import { readGgufHeader } from '../../../node/backends/llama-cpp-gguf.js';
import { configFromFlags } from '../../../cli/commands/config-flags.js';

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(argv, { out: (s) => (out += s), err: (s) => (err += s), env: {} });
  return { code, out, err };
}

describe('fednode model tiny', () => {
  it('writes a valid, seed-deterministic GGUF and says how to serve it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fednode-model-'));
    const a = await cli(['model', 'tiny', join(dir, 'a.gguf'), '--seed', '9', '--json']);
    expect(a.code, a.err).toBe(0);
    expect(JSON.parse(a.out)).toMatchObject({ file: join(dir, 'a.gguf'), seed: 9, eosBias: 3, vocab: 262 });
    const b = await cli(['model', 'tiny', join(dir, 'b.gguf'), '--seed', '9', '--name', 'x']);
    expect(b.out).toMatch(/serve it: fednode init --new-cluster --gguf/);
    const ha = readGgufHeader(readFileSync(join(dir, 'a.gguf')));
    expect(ha.metadata.get('general.name')).toBe('fednode-tiny');
    expect(readGgufHeader(readFileSync(join(dir, 'b.gguf'))).metadata.get('general.name')).toBe('x');
  });

  it('bad arguments are usage errors (exit 2) naming the problem', async () => {
    const unknown = await cli(['model', 'huge', '/tmp/x.gguf']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/unknown model kind 'huge'/);
    const eos = await cli(['model', 'tiny', '/tmp/x.gguf', '--eos-bias', 'lots']);
    expect(eos.code).toBe(2);
    expect(eos.err).toMatch(/--eos-bias must be a number/);
    const missing = await cli(['model', 'tiny']);
    expect(missing.code).toBe(2);
    const engine = await cli(['cluster', '--engine', 'vllm']);
    expect(engine.code).toBe(2);
    expect(engine.err).toMatch(/--engine must be simulated or llama/);
  });

  it('--gguf makes a llama-cpp backend entry; llama flags without --gguf are refused', () => {
    const c = configFromFlags({ flags: { gguf: ['m.gguf'], 'llama-threads': 2 }, positionals: [] });
    expect(c.backends).toEqual([{ kind: 'llama-cpp', id: 'llama-cpp', models: [join(process.cwd(), 'm.gguf')], threads: 2 }]);
    expect(() => configFromFlags({ flags: { 'llama-sequences': 2 }, positionals: [] })).toThrow(/need --gguf/);
  });
});
