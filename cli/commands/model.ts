/**
 * `fednode model tiny <file>`: write the project's tiny random-weight llama model (GGUF v3,
 * ~460 KB, deterministic from --seed) for tests and demos of the embedded llama.cpp engine.
 */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from '../command.js';
import { flagNumber, flagString } from '../command.js';
import { UsageError } from '../args.js';
import { TINY_MODEL, tinyModelGguf } from '../../node/backends/llama-cpp-tiny.js';
import { pathExists } from '../../node/datadir.js';

/** The cluster's tiny model: one file shared by every node of `fednode cluster --engine llama`. */
export async function ensureTinyModel(dir: string): Promise<string> {
  const file = resolve(dir, 'tiny.gguf');
  if (!(await pathExists(file))) await writeFile(file, tinyModelGguf({ seed: 1 }));
  return file;
}

export const modelCommand: Command = {
  name: 'model',
  flags: [
    { name: 'seed', type: 'int', min: 0, max: 0xffffffff, placeholder: '<n>', description: 'PRNG seed: the same seed writes the same bytes', defaultText: '1' },
    { name: 'eos-bias', type: 'string', placeholder: '<logits>', description: 'logit bias of end-of-turn: ~3 ends replies after a few dozen tokens, -30 never, 10 at once', defaultText: '3' },
    { name: 'name', type: 'string', placeholder: '<name>', description: 'general.name in the file', defaultText: 'fednode-tiny' },
  ],
  positionals: [
    { name: 'kind', description: "what to make: 'tiny'", required: true },
    { name: 'file', description: 'where to write the GGUF file', required: true },
  ],
  async run(ctx) {
    const [kind, file] = ctx.args.positionals;
    if (kind !== 'tiny') throw new UsageError(`unknown model kind '${kind ?? ''}': only 'tiny' can be made`, 'model');
    if (file === undefined) throw new UsageError('missing <file>', 'model');
    const eosText = flagString(ctx.args, 'eos-bias');
    const eosBias = eosText === undefined ? 3 : Number(eosText);
    if (!Number.isFinite(eosBias) || eosBias < -100 || eosBias > 100) throw new UsageError(`--eos-bias must be a number in [-100, 100], got '${eosText ?? ''}'`, 'model');
    const seed = flagNumber(ctx.args, 'seed') ?? 1;
    const name = flagString(ctx.args, 'name') ?? 'fednode-tiny';
    const bytes = tinyModelGguf({ seed, eosBias, name });
    const path = resolve(file);
    await writeFile(path, bytes);
    ctx.result({ file: path, bytes: bytes.length, seed, eosBias, ...TINY_MODEL }, `wrote ${path} (${bytes.length} bytes, seed ${seed}): llama, ${TINY_MODEL.embd} dims, ${TINY_MODEL.layers} layers, ${TINY_MODEL.heads} heads, ${TINY_MODEL.vocab}-token vocabulary, context ${TINY_MODEL.context}\nserve it: fednode init --new-cluster --gguf ${path}  (or "backends": [{"kind": "llama-cpp", "models": ["${path}"]}])\n`);
    return 0;
  },
};
