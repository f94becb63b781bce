/**
 * Config of the embedded llama.cpp engine (`{ kind: 'llama-cpp', ... }` in `backends`).
 * Strict: an unknown field is an error naming it, so a typo never silently does nothing.
 */
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { BackendError } from './types.js';

/** Models one engine loads: each is a context in memory; 64 is far past what a home-lab host holds. */
export const LLAMA_CPP_MAX_MODELS = 64;

export const llamaCppConfigSchema = z.strictObject({
  kind: z.literal('llama-cpp'),
  id: z.string().min(1).max(64).default('llama-cpp'),
  /** GGUF files: a path, or { path, id } to name the model (default id: the file name without .gguf). */
  models: z
    .array(z.union([z.string().min(1).max(4096), z.strictObject({ path: z.string().min(1).max(4096), id: z.string().min(1).max(128).optional() })]))
    .max(LLAMA_CPP_MAX_MODELS)
    .default([]),
  /** Every *.gguf in this directory is loaded too (read at start). */
  modelsDir: z.string().min(1).max(4096).nullable().default(null),
  /** Tokens of context per sequence. @default 2048 (the tiny model's own context) */
  contextSize: z.number().int().min(64).max(1_048_576).default(2048),
  /** Parallel sequences per model = requests generated at once (the advertised capacity). @default 2 */
  sequences: z.number().int().min(1).max(64).default(2),
  /** Requests waiting for a free sequence; beyond: ERR_BACKEND_BUSY (429). @default 64 */
  maxQueue: z.number().int().min(0).max(4096).default(64),
  /**
   * CPU threads. Default: half the cores (at least 1, at most 8): llama.cpp with more threads than
   * free cores collapses (4 threads on a 2-core host fell from ~1,300 to 3 tokens/s).
   */
  threads: z.number().int().min(1).max(256).nullable().default(null),
  /** 'auto' uses a CUDA/Vulkan build when one loads, else CPU (logged); false = CPU only. @default 'auto' */
  gpu: z.union([z.literal('auto'), z.literal('cuda'), z.literal('vulkan'), z.literal(false)]).default('auto'),
  /** Layers offloaded to the GPU; null = as many as fit (node-llama-cpp 'auto'). @default null */
  gpuLayers: z.number().int().min(0).max(1024).nullable().default(null),
  /** Tokens generated when a request sets no max. @default null (up to the context size) */
  defaultMaxTokens: z.number().int().min(1).max(1_048_576).nullable().default(null),
  /** Serve /v1/embeddings from these models (an embedding context per model, made on first use). @default true */
  embeddings: z.boolean().default(true),
  /** Concurrent requests advertised; null = models x sequences (the engine's own count). @default null */
  capacity: z.number().int().min(1).max(4096).nullable().default(null),
});

export type LlamaCppConfig = z.output<typeof llamaCppConfigSchema>;
export type LlamaCppConfigInput = z.input<typeof llamaCppConfigSchema>;

export function defaultThreads(): number {
  return Math.max(1, Math.min(8, Math.floor(availableParallelism() / 2)));
}

export function parseLlamaCppConfig(input: unknown): LlamaCppConfig {
  const r = llamaCppConfigSchema.safeParse(input);
  if (r.success) {
    if (r.data.models.length === 0 && r.data.modelsDir === null) throw new BackendError('ERR_BACKEND_CONFIG', 'llama-cpp backend: set models (GGUF paths) or modelsDir', { id: r.data.id });
    return r.data;
  }
  const problems = r.error.issues.map((i) => {
    const path = i.path.map(String).join('.');
    if (i.code === 'unrecognized_keys') return i.keys.map((k) => `${path === '' ? '' : `${path}.`}${k}: unknown field`).join('; ');
    return `${path === '' ? '(entry)' : path}: ${i.message}`;
  });
  throw new BackendError('ERR_BACKEND_CONFIG', `llama-cpp backend: ${problems.join('; ')}`, { problems });
}
