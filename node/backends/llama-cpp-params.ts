/**
 * Request fields -> node-llama-cpp generation options, for the embedded engine. Honoured:
 * max tokens, temperature, top_p, top_k, seed, stop, presence/frequency penalties (its
 * repeat penalty), logit_bias (token bias, -100 = never), response_format json_object /
 * json_schema (a grammar), user (an end-user id: nothing to do for a local engine). Anything
 * else (tools, logprobs, a field this file does not know) is ERR_BACKEND_UNSUPPORTED naming
 * it: never silently dropped. Field names are the api's (node/backends/types.ts SamplingParams).
 */
import type { Llama, LlamaGrammar, LlamaModel } from 'node-llama-cpp';
import type { NodeLlamaCpp } from './llama-cpp-engine.js';
import { BackendError } from './types.js';
import type { ChatRequest } from './types.js';

/** The request as this engine reads it: the fields of the api's SamplingParams / ChatRequest it honours. */
export type LlamaChatRequest = ChatRequest & {
  topK?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  logitBias?: Record<string, number>;
  user?: string;
  responseFormat?: { type: 'text' } | { type: 'json_object' } | { type: 'json_schema'; json_schema: { name?: string; schema?: Record<string, unknown> } };
};

const HONOURED = new Set(['model', 'messages', 'maxTokens', 'temperature', 'topP', 'topK', 'stop', 'seed', 'presencePenalty', 'frequencyPenalty', 'logitBias', 'user', 'responseFormat']);
/** OpenAI wire names for the error text. */
const WIRE: Record<string, string> = { tools: 'tools', toolChoice: 'tool_choice', parallelToolCalls: 'parallel_tool_calls', logprobs: 'logprobs', topLogprobs: 'top_logprobs' };

/** Logit-bias entries per request: OpenAI caps logit_bias at 300 tokens. */
const MAX_LOGIT_BIAS = 300;

export function assertLlamaSupported(req: ChatRequest, id: string): void {
  for (const [k, v] of Object.entries(req)) {
    if (v === undefined || HONOURED.has(k)) continue;
    const param = WIRE[k] ?? k;
    throw new BackendError('ERR_BACKEND_UNSUPPORTED', `the llama-cpp backend ${id} cannot honour '${param}'`, { param, backendKind: 'llama-cpp', fields: [k], backend: id });
  }
}

export interface GenerationOptions {
  temperature: number;
  topP?: number;
  topK?: number;
  seed?: number;
  customStopTriggers?: readonly string[];
  repeatPenalty?: { presencePenalty?: number; frequencyPenalty?: number };
  tokenBias?: InstanceType<NodeLlamaCpp['TokenBias']>;
  grammar?: LlamaGrammar;
}

/** Tokens in the model's vocabulary (from the GGUF's tokenizer.ggml.tokens). */
function vocabularySize(model: LlamaModel): number {
  const md = model.fileInfo.metadata as { tokenizer?: { ggml?: { tokens?: readonly unknown[] } } };
  return md.tokenizer?.ggml?.tokens?.length ?? Number.MAX_SAFE_INTEGER;
}

export async function generationOptions(req: LlamaChatRequest, lib: NodeLlamaCpp, llama: Llama, model: LlamaModel, defaultTemperature: number): Promise<GenerationOptions> {
  const o: GenerationOptions = { temperature: req.temperature ?? defaultTemperature };
  if (req.topP !== undefined) o.topP = req.topP;
  if (req.topK !== undefined) o.topK = req.topK;
  if (req.seed !== undefined) o.seed = req.seed;
  if (req.stop !== undefined && req.stop.length > 0) o.customStopTriggers = req.stop;
  if (req.presencePenalty !== undefined || req.frequencyPenalty !== undefined) {
    o.repeatPenalty = { ...(req.presencePenalty !== undefined ? { presencePenalty: req.presencePenalty } : {}), ...(req.frequencyPenalty !== undefined ? { frequencyPenalty: req.frequencyPenalty } : {}) };
  }
  if (req.logitBias !== undefined) {
    const entries = Object.entries(req.logitBias);
    if (entries.length > MAX_LOGIT_BIAS) throw new BackendError('ERR_BACKEND_UNSUPPORTED', `logit_bias has ${entries.length} entries, at most ${MAX_LOGIT_BIAS}`, { param: 'logit_bias' });
    const bias = lib.TokenBias.for(model);
    const vocab = vocabularySize(model);
    for (const [token, b] of entries) {
      const t = Number(token);
      if (!Number.isInteger(t) || t < 0 || t >= vocab || !Number.isFinite(b) || b < -100 || b > 100) throw new BackendError('ERR_BACKEND_UNSUPPORTED', `logit_bias: token ${token} -> ${b} is not a token id of this model with a bias in -100..100`, { param: 'logit_bias' });
      bias.set(t as never, b <= -100 ? 'never' : { logit: b });
    }
    o.tokenBias = bias;
  }
  const rf = req.responseFormat;
  if (rf !== undefined && rf.type !== 'text') {
    try {
      o.grammar = rf.type === 'json_object' ? await llama.getGrammarFor('json') : await llama.createGrammarForJsonSchema((rf.json_schema.schema ?? { type: 'object' }) as never);
    } catch (e) {
      throw new BackendError('ERR_BACKEND_UNSUPPORTED', `response_format: this JSON schema cannot be turned into a grammar: ${e instanceof Error ? e.message : String(e)}`, { param: 'response_format' }, { cause: e });
    }
  }
  return o;
}
