/**
 * Which request fields each backend kind can honour. A field a backend cannot honour is a
 * refusal naming it (ERR_BACKEND_UNSUPPORTED, data.param, HTTP 400 at the API), never a
 * silent drop. Each adapter calls `assertSupported` first thing; the router fails over to
 * a candidate of another kind before answering 400 (a cluster can mix kinds).
 */
import { BackendError } from './types.js';
import type { BackendKind, ChatRequest, CompletionRequest } from './types.js';

/** OpenAI wire name of each internal field (what the error names). */
const WIRE: Record<string, string> = {
  maxTokens: 'max_tokens',
  temperature: 'temperature',
  topP: 'top_p',
  topK: 'top_k',
  stop: 'stop',
  seed: 'seed',
  presencePenalty: 'presence_penalty',
  frequencyPenalty: 'frequency_penalty',
  logitBias: 'logit_bias',
  logprobs: 'logprobs',
  topLogprobs: 'top_logprobs',
  user: 'user',
  tools: 'tools',
  toolChoice: 'tool_choice',
  parallelToolCalls: 'parallel_tool_calls',
  responseFormat: 'response_format',
};

/**
 * Fields each kind honours. openai: every field is sent as is (the server decides).
 * ollama: mapped to `options`, `tools`, `format` (no logit bias, no logprobs, no forced tool
 * choice). simulated: stop, max tokens, tools (a deterministic call), response_format (JSON
 * that fits the schema); temperature/top_p/top_k/seed are accepted because its output is
 * deterministic by design (a sampler with one outcome honours any of them); penalties,
 * logit bias and logprobs it cannot imitate.
 */
const HONOURED: Record<BackendKind, ReadonlySet<string>> = {
  openai: new Set(Object.keys(WIRE)),
  ollama: new Set(['maxTokens', 'temperature', 'topP', 'topK', 'stop', 'seed', 'presencePenalty', 'frequencyPenalty', 'user', 'tools', 'toolChoice', 'parallelToolCalls', 'responseFormat']),
  // llama-cpp: node/backends/llama-cpp-params.ts maps each to node-llama-cpp (penalties -> repeatPenalty, logit bias -> TokenBias, response_format -> a JSON grammar).
  'llama-cpp': new Set(['maxTokens', 'temperature', 'topP', 'topK', 'stop', 'seed', 'presencePenalty', 'frequencyPenalty', 'logitBias', 'user', 'responseFormat']),
  simulated: new Set(['maxTokens', 'temperature', 'topP', 'topK', 'stop', 'seed', 'user', 'tools', 'toolChoice', 'parallelToolCalls', 'responseFormat']),
};

function refuse(kind: string, field: string, why: string): never {
  const param = WIRE[field] ?? field;
  throw new BackendError('ERR_BACKEND_UNSUPPORTED', `the ${kind} backend cannot honour '${param}'${why === '' ? '' : ` (${why})`}`, { param, backendKind: kind });
}

/** Throws ERR_BACKEND_UNSUPPORTED naming the first field `kind` cannot honour. */
export function assertSupported(kind: BackendKind, req: ChatRequest | CompletionRequest): void {
  const honoured = HONOURED[kind];
  for (const [k, v] of Object.entries(req)) {
    if (v === undefined || k === 'model' || k === 'messages' || k === 'prompt') continue;
    if (!(k in WIRE)) refuse(kind, k, 'unknown field');
    if (!honoured.has(k)) refuse(kind, k, '');
  }
  if (kind === 'ollama' && 'messages' in req) {
    const tc = req.toolChoice;
    // Ollama offers every tool to the model and lets it choose: 'auto' is its behaviour, 'none' = offer none.
    if (tc !== undefined && tc !== 'auto' && tc !== 'none') refuse(kind, 'toolChoice', 'Ollama cannot force a tool call; use "auto" or "none"');
    if (req.parallelToolCalls === false) refuse(kind, 'parallelToolCalls', 'Ollama cannot limit a reply to one tool call');
  }
}
