/** Writes the project's tiny GGUF model into a temp dir (tests never download weights). */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tinyModelGguf } from '../../node/backends/llama-cpp-tiny.js';
import type { TinyModelOptions } from '../../node/backends/llama-cpp-tiny.js';

export function writeTinyModel(opts: TinyModelOptions & { file?: string; dir?: string } = {}): string {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'fednode-tiny-'));
  const file = join(dir, opts.file ?? 'tiny.gguf');
  writeFileSync(file, tinyModelGguf(opts));
  return file;
}
