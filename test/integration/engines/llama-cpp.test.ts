// The embedded llama.cpp engine on the project's tiny GGUF model: the real node-llama-cpp
// binary (CPU prebuilt), real tokeniser and chat template, streaming, abort, usage, capacity.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { LlamaCppBackend } from '../../../node/backends/llama-cpp.js';
import { BackendError } from '../../../node/backends/types.js';
import type { ChatChunk, ChatRequest } from '../../../node/backends/types.js';
import { writeTinyModel } from '../../helpers/tiny-model.js';

async function collect(it: AsyncIterable<ChatChunk>): Promise<{ text: string; chunks: ChatChunk[] }> {
  const chunks: ChatChunk[] = [];
  for await (const c of it) chunks.push(c);
  return { text: chunks.map((c) => (c.type === 'delta' ? c.content : '')).join(''), chunks };
}
async function errorOf(p: Promise<unknown>): Promise<BackendError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof BackendError) return e;
    throw e;
  }
  throw new Error('expected a BackendError');
}

const file = writeTinyModel({ seed: 1, eosBias: -30 }); // never ends by itself: runs to max tokens
const ask = (over: Partial<ChatRequest> = {}): ChatRequest => ({ model: 'tiny', messages: [{ role: 'user', content: 'hello there' }], maxTokens: 24, temperature: 0.8, seed: 5, ...over });
let b: LlamaCppBackend;

beforeAll(async () => {
  b = new LlamaCppBackend({ kind: 'llama-cpp', id: 'llm', models: [file], sequences: 2, maxQueue: 1, threads: 1, gpu: false, contextSize: 512 });
  await b.start();
});
afterAll(async () => {
  await b.close();
});

describe('llama-cpp backend (real engine, tiny model)', () => {
  it('lists its GGUF model by file name and says where it runs', async () => {
    expect(await b.models()).toEqual([{ id: 'tiny', backendId: 'llm', kind: 'llama-cpp', simulated: false, loaded: true }]);
    const h = await b.health();
    expect(h.ok).toBe(true);
    expect(h.detail).toMatch(/llama\.cpp on cpu \(1 threads\), 1 model\(s\), 2 sequence\(s\)/);
  });

  it('streams printable text with usage counted per request, and is reproducible by seed', async () => {
    const a = await collect(b.chat(ask()));
    const done = a.chunks.at(-1);
    expect(done?.type).toBe('done');
    if (done?.type !== 'done') return;
    expect(done.finishReason).toBe('length');
    expect(done.usage.completionTokens).toBe(24);
    // ChatML: <s> <|im_start|> "user\nhello there" <|im_end|> \n <|im_start|> "assistant\n": byte tokens per character
    expect(done.usage.promptTokens).toBeGreaterThan(20);
    expect(a.chunks.filter((c) => c.type === 'delta').length).toBeGreaterThan(1);
    expect(a.text).toMatch(/^[\x20-\x7e]+$/);
    const again = await collect(b.chat(ask()));
    expect(again.text).toBe(a.text); // same seed, fresh sequence: the same tokens
    const done2 = again.chunks.at(-1);
    expect(done2?.type === 'done' && done2.usage).toEqual(done.usage); // meters are per request, not cumulative
    const other = await collect(b.chat(ask({ seed: 6 })));
    expect(other.text).not.toBe(a.text);
  });

  it('ends at end-of-turn with finish reason stop when the model says so', async () => {
    const eager = new LlamaCppBackend({ kind: 'llama-cpp', models: [{ path: writeTinyModel({ seed: 2, eosBias: 30 }), id: 'eager' }], threads: 1, gpu: false, contextSize: 256 });
    try {
      const r = await collect(eager.chat(ask({ model: 'eager', maxTokens: 50 })));
      const done = r.chunks.at(-1);
      expect(done?.type === 'done' && done.finishReason).toBe('stop');
      expect(done?.type === 'done' && done.usage.completionTokens).toBeLessThan(50);
    } finally {
      await eager.close();
    }
  });

  it('a stop string ends the reply before it', async () => {
    const free = await collect(b.chat(ask({ maxTokens: 40 })));
    const cut = free.text.slice(5, 7);
    const r = await collect(b.chat(ask({ maxTokens: 40, stop: [cut] })));
    expect(r.text.includes(cut)).toBe(false);
    expect(free.text.startsWith(r.text)).toBe(true);
    const done = r.chunks.at(-1);
    expect(done?.type === 'done' && done.finishReason).toBe('stop');
  });

  it('abort mid-stream stops generation and frees the sequence; capacity and queue are the sequences', async () => {
    const ac = new AbortController();
    const long = b.chat(ask({ maxTokens: 100_000 }), ac.signal)[Symbol.asyncIterator]();
    expect((await long.next()).value).toMatchObject({ type: 'delta' });
    const second = b.chat(ask({ maxTokens: 100_000 }))[Symbol.asyncIterator]();
    expect((await second.next()).value).toMatchObject({ type: 'delta' });
    expect(await b.load()).toEqual({ capacity: 2, inFlight: 2, queued: 0, source: 'embedded sequences' });
    const third = collect(b.chat(ask({ maxTokens: 4 })));
    await expect.poll(async () => (await b.load())?.queued).toBe(1);
    expect((await errorOf(collect(b.chat(ask())))).code).toBe('ERR_BACKEND_BUSY'); // maxQueue 1
    ac.abort();
    let next = await long.next();
    const err = await (async () => {
      try {
        while (!next.done) next = await long.next();
        return null;
      } catch (e) {
        return e as BackendError;
      }
    })();
    expect(err?.code).toBe('ERR_BACKEND_ABORTED');
    // The freed sequence served the queued request.
    expect((await third).chunks.at(-1)).toMatchObject({ type: 'done', usage: { completionTokens: 4 } });
    await second.return?.(undefined); // a consumer that stops reading frees its sequence too
    await expect.poll(async () => (await b.load())?.inFlight).toBe(0);
    expect((await collect(b.chat(ask({ maxTokens: 3 })))).chunks.at(-1)).toMatchObject({ type: 'done', usage: { completionTokens: 3 } });
  });

  it('embeds text with the model (vectors of its width) and refuses a width it cannot give', async () => {
    const r = await b.embed({ model: 'tiny', input: ['hello', 'world'] });
    expect(r.vectors).toHaveLength(2);
    expect(r.vectors[0]).toHaveLength(64);
    expect(r.vectors[0]).not.toEqual(r.vectors[1]);
    expect(r.promptTokens).toBeGreaterThanOrEqual(10);
    expect((await errorOf(b.embed({ model: 'tiny', input: ['x'], dimensions: 32 }))).message).toMatch(/dimensions: model tiny gives 64-dimensional embeddings/);
  });

  it('names what it cannot do: an unknown model, a tool message, an unsupported field', async () => {
    expect((await errorOf(collect(b.chat(ask({ model: 'nope' }))))).code).toBe('ERR_BACKEND_MODEL_NOT_FOUND');
    const tool = await errorOf(collect(b.chat(ask({ messages: [{ role: 'tool', content: 'x' }] }))));
    expect(tool.code).toBe('ERR_BACKEND_UNSUPPORTED');
    expect(tool.message).toMatch(/role tool/);
    const extra = await errorOf(collect(b.chat({ ...ask(), tools: [{ type: 'function', function: { name: 'f' } }] })));
    expect(extra.code).toBe('ERR_BACKEND_UNSUPPORTED');
    expect(extra.message).toMatch(/cannot honour 'tools'/);
  });
});

describe('llama-cpp backend config and files', () => {
  it('rejects unknown fields and missing models by name', () => {
    expect(() => new LlamaCppBackend({ kind: 'llama-cpp', models: [file], sequencs: 2 })).toThrow(/sequencs: unknown field/);
    expect(() => new LlamaCppBackend({ kind: 'llama-cpp' })).toThrow(/set models \(GGUF paths\) or modelsDir/);
  });

  it('a missing or corrupt GGUF is a named error from models() and health(), not a crash', async () => {
    const missing = new LlamaCppBackend({ kind: 'llama-cpp', models: ['/nonexistent/x.gguf'], gpu: false });
    expect((await errorOf(missing.models())).message).toMatch(/model file \/nonexistent\/x\.gguf does not exist/);
    const corrupt = join(dirname(file), 'corrupt.gguf');
    writeFileSync(corrupt, 'GGUF garbage');
    const bad = new LlamaCppBackend({ kind: 'llama-cpp', models: [corrupt], gpu: false, threads: 1 });
    const h = await bad.health();
    expect(h.ok).toBe(false);
    expect(h.detail).toMatch(/corrupt\.gguf is not a loadable GGUF model/);
  });

  it('modelsDir loads every .gguf in it', async () => {
    const dir = dirname(writeTinyModel({ seed: 3, file: 'alpha.gguf' }));
    writeTinyModel({ seed: 4, file: 'beta.gguf', dir });
    writeFileSync(join(dir, 'notes.txt'), 'not a model');
    const d = new LlamaCppBackend({ kind: 'llama-cpp', modelsDir: dir, gpu: false, threads: 1, contextSize: 256, sequences: 3 });
    try {
      expect((await d.models()).map((m) => m.id)).toEqual(['alpha', 'beta']);
      expect(await d.load()).toMatchObject({ capacity: 6 });
    } finally {
      await d.close();
    }
  });
});
