// The project's GGUF writer and its tiny llama model: valid GGUF v3 (read back by our own
// header reader here; loaded by the real llama.cpp in test/integration/engines).
import { describe, it, expect } from 'vitest';
import { createHash } from 'node:crypto';
import { readGgufHeader, writeGguf, GgufError } from '../../../node/backends/llama-cpp-gguf.js';
import { tinyModelGguf, TINY_MODEL, TINY_TOKENS, TINY_CHAT_TEMPLATE } from '../../../node/backends/llama-cpp-tiny.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('tiny GGUF model', () => {
  it('is deterministic from its seed and under 1 MB', () => {
    const a = tinyModelGguf({ seed: 7 });
    expect(sha(tinyModelGguf({ seed: 7 }))).toBe(sha(a));
    expect(sha(tinyModelGguf({ seed: 8 }))).not.toBe(sha(a));
    expect(a.length).toBeLessThan(1024 * 1024);
    expect(a.length).toBeGreaterThan(400 * 1024); // every weight is really there (F32)
  });

  it('carries the llama shape, the 262-token SPM vocabulary and the ChatML template', () => {
    const h = readGgufHeader(tinyModelGguf({ seed: 1 }));
    expect(h.version).toBe(3);
    expect(h.tensorCount).toBe(3 + 9 * TINY_MODEL.layers);
    const md = h.metadata;
    expect(md.get('general.architecture')).toBe('llama');
    expect(md.get('llama.embedding_length')).toBe(64);
    expect(md.get('llama.block_count')).toBe(2);
    expect(md.get('llama.attention.head_count')).toBe(4);
    expect(md.get('llama.context_length')).toBe(2048);
    expect(md.get('tokenizer.ggml.model')).toBe('llama');
    const tokens = md.get('tokenizer.ggml.tokens') as string[];
    const types = md.get('tokenizer.ggml.token_type') as number[];
    expect(tokens).toHaveLength(262);
    expect(tokens.slice(0, 3)).toEqual(['<unk>', '<s>', '</s>']);
    expect(tokens[TINY_TOKENS.byte0]).toBe('<0x00>');
    expect(tokens[TINY_TOKENS.byte0 + 255]).toBe('<0xFF>');
    expect(types.slice(TINY_TOKENS.byte0, TINY_TOKENS.byte0 + 256).every((t) => t === 6)).toBe(true);
    expect(tokens[TINY_TOKENS.space]).toBe('\u2581');
    expect(tokens.slice(260)).toEqual(['<|im_start|>', '<|im_end|>']);
    expect(md.get('tokenizer.ggml.eos_token_id')).toBe(TINY_TOKENS.imEnd);
    expect(md.get('tokenizer.chat_template')).toBe(TINY_CHAT_TEMPLATE);
    expect(md.get('general.alignment')).toBe(32);
  });

  it('names a tensor whose data does not fit its dims', () => {
    expect(() => writeGguf([], [{ name: 'x', dims: [4, 2], data: new Float32Array(7) }])).toThrow(/tensor x: dims 4x2 hold 8 values, data has 7/);
  });

  it('the reader rejects damage with a named GgufError', () => {
    const good = tinyModelGguf({ seed: 1 });
    const bad = good.slice();
    bad[0] = 0x00;
    expect(() => readGgufHeader(bad)).toThrow(GgufError);
    expect(() => readGgufHeader(bad)).toThrow(/bad magic/);
    expect(() => readGgufHeader(good.subarray(0, 200))).toThrow(/truncated GGUF/);
    const v2 = good.slice();
    v2[4] = 2;
    expect(() => readGgufHeader(v2)).toThrow(/version 2/);
  });
});
