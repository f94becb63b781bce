/**
 * A tiny real llama model made by the project (`fednode model tiny <file>`), so tests and
 * demos run a real engine without downloading weights: a valid GGUF v3 llama model with
 * random weights, deterministic from a seed, under 1 MB.
 *
 * Shape: 64 dims, 2 layers, 4 heads (head dim 16), feed-forward 128, 2,048 context, a
 * 262-token SPM vocabulary: `<unk> <s> </s>`, the byte tokens `<0x00>..<0xFF>` (type 6, so
 * any text tokenises by byte fallback), `▁`, and the ChatML specials `<|im_start|>
 * <|im_end|>`, with a ChatML chat template.
 *
 * Output control (the trick that makes random weights usable): residual dimension 0 is
 * held constant. Every token embedding has 1 there and every matrix that writes into the
 * residual stream (attn_output, ffn_down) has a zero row 0, so after the final RMS norm
 * dimension 0 is a large near-constant (~6). `output.weight[:, 0]` then acts as a per-token
 * logit bias: printable ASCII bytes and `▁` get 0, every other token -30 (never sampled),
 * and `<|im_end|>` (end of turn) gets `eosBias`, which tunes how soon a reply ends.
 */
import { Prng } from '../../base/prng.js';
import { writeGguf } from './llama-cpp-gguf.js';
import type { GgufTensor, GgufValue } from './llama-cpp-gguf.js';

export const TINY_MODEL = Object.freeze({ embd: 64, layers: 2, heads: 4, ff: 128, context: 2048, vocab: 262 });

export interface TinyModelOptions {
  /** PRNG seed: the same seed gives the same bytes. @default 1 */
  seed?: number;
  /**
   * Logit bias of `<|im_end|>`. Around 3 a sampled reply ends after a few dozen tokens; -30
   * never ends (runs to max tokens: what abort tests want); 10 ends at once. @default 3
   */
  eosBias?: number;
  /** general.name. @default 'fednode-tiny' */
  name?: string;
}

export const TINY_CHAT_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** Token ids of the vocabulary (fixed by construction). */
export const TINY_TOKENS = Object.freeze({ unk: 0, bos: 1, eos: 2, byte0: 3, space: 259, imStart: 260, imEnd: 261 });

function vocabulary(): { tokens: string[]; types: number[] } {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3]; // unknown, control, control
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6); // byte
  }
  tokens.push('\u2581');
  types.push(1); // normal
  tokens.push('<|im_start|>', '<|im_end|>');
  types.push(3, 3);
  return { tokens, types };
}

/** Bias (in logits) per token: what output.weight[:, 0] carries, divided by dim 0's normalised value. */
function logitBias(eosBias: number): Float32Array {
  const bias = new Float32Array(TINY_MODEL.vocab).fill(-30);
  for (let b = 0x20; b <= 0x7e; b++) bias[TINY_TOKENS.byte0 + b] = 0;
  bias[TINY_TOKENS.space] = 0;
  bias[TINY_TOKENS.imEnd] = eosBias;
  return bias;
}

/** Write the tiny model; returns the GGUF bytes (~460 KB). */
export function tinyModelGguf(opts: TinyModelOptions = {}): Uint8Array {
  const seed = opts.seed ?? 1;
  const eosBias = opts.eosBias ?? 3;
  const rng = new Prng(seed >>> 0);
  const { embd, layers, heads, ff, context, vocab } = TINY_MODEL;
  const normal = (n: number, std: number): Float32Array => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = rng.normal() * std;
    return a;
  };
  const ones = (n: number): Float32Array => new Float32Array(n).fill(1);
  /** ne = [inDim, outDim]; zeroRow0 keeps output dimension 0 (the constant) untouched. */
  const matrix = (inDim: number, outDim: number, std: number, zeroRow0: boolean): Float32Array => {
    const m = normal(inDim * outDim, std);
    if (zeroRow0) m.fill(0, 0, inDim);
    return m;
  };
  const tokenEmbd = normal(embd * vocab, 0.1);
  for (let t = 0; t < vocab; t++) tokenEmbd[t * embd] = 1;
  // Normalised dim 0 is about 1 / rms = 1 / sqrt((1 + 63 * 0.1^2) / 64) ~ 6.3.
  const dim0 = 6.3;
  const bias = logitBias(eosBias);
  const output = normal(embd * vocab, 0.4);
  for (let t = 0; t < vocab; t++) output[t * embd] = (bias[t] ?? 0) / dim0;
  const tensors: GgufTensor[] = [
    { name: 'token_embd.weight', dims: [embd, vocab], data: tokenEmbd },
    { name: 'output_norm.weight', dims: [embd], data: ones(embd) },
    { name: 'output.weight', dims: [embd, vocab], data: output },
  ];
  for (let l = 0; l < layers; l++) {
    tensors.push(
      { name: `blk.${l}.attn_norm.weight`, dims: [embd], data: ones(embd) },
      { name: `blk.${l}.attn_q.weight`, dims: [embd, embd], data: matrix(embd, embd, 0.1, false) },
      { name: `blk.${l}.attn_k.weight`, dims: [embd, embd], data: matrix(embd, embd, 0.1, false) },
      { name: `blk.${l}.attn_v.weight`, dims: [embd, embd], data: matrix(embd, embd, 0.1, false) },
      { name: `blk.${l}.attn_output.weight`, dims: [embd, embd], data: matrix(embd, embd, 0.05, true) },
      { name: `blk.${l}.ffn_norm.weight`, dims: [embd], data: ones(embd) },
      { name: `blk.${l}.ffn_gate.weight`, dims: [embd, ff], data: matrix(embd, ff, 0.1, false) },
      { name: `blk.${l}.ffn_up.weight`, dims: [embd, ff], data: matrix(embd, ff, 0.1, false) },
      { name: `blk.${l}.ffn_down.weight`, dims: [ff, embd], data: matrix(ff, embd, 0.05, true) },
    );
  }
  const { tokens, types } = vocabulary();
  const metadata: Array<readonly [string, GgufValue]> = [
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.name', { type: 'string', value: opts.name ?? 'fednode-tiny' }],
    ['llama.context_length', { type: 'u32', value: context }],
    ['llama.embedding_length', { type: 'u32', value: embd }],
    ['llama.block_count', { type: 'u32', value: layers }],
    ['llama.feed_forward_length', { type: 'u32', value: ff }],
    ['llama.attention.head_count', { type: 'u32', value: heads }],
    ['llama.attention.head_count_kv', { type: 'u32', value: heads }],
    ['llama.rope.dimension_count', { type: 'u32', value: embd / heads }],
    ['llama.attention.layer_norm_rms_epsilon', { type: 'f32', value: 1e-5 }],
    ['llama.vocab_size', { type: 'u32', value: vocab }],
    ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'array', of: 'string', value: tokens }],
    ['tokenizer.ggml.scores', { type: 'array', of: 'f32', value: tokens.map(() => 0) }],
    ['tokenizer.ggml.token_type', { type: 'array', of: 'i32', value: types }],
    ['tokenizer.ggml.bos_token_id', { type: 'u32', value: TINY_TOKENS.bos }],
    ['tokenizer.ggml.eos_token_id', { type: 'u32', value: TINY_TOKENS.imEnd }],
    ['tokenizer.ggml.unknown_token_id', { type: 'u32', value: TINY_TOKENS.unk }],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: true }],
    ['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }],
    ['tokenizer.chat_template', { type: 'string', value: TINY_CHAT_TEMPLATE }],
  ];
  return writeGguf(metadata, tensors);
}
