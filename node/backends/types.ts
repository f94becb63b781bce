/**
 * One interface for every inference backend (Ollama, OpenAI-compatible servers, the
 * embedded simulated backend). Chat streams are AsyncIterables of chunks that end with
 * exactly one 'done' chunk carrying usage and timings; errors are thrown BackendErrors.
 *
 * The request carries the whole OpenAI chat surface (tools, tool calls in history,
 * response_format, every sampling field). A backend honours a field or refuses the
 * request with ERR_BACKEND_UNSUPPORTED naming it (params.ts): nothing is dropped silently.
 */
import { FednodeError } from '../../base/errors.js';

export type BackendKind = 'ollama' | 'openai' | 'simulated' | 'llama-cpp';

/** A complete tool call (assistant message in history, or assembled from a stream). */
export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** A fragment of a streamed tool call, as OpenAI's `delta.tool_calls[i]`. */
export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: 'function';
  function?: { name?: string; arguments?: string };
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  /** assistant: the tool calls it made. */
  toolCalls?: ToolCall[];
  /** tool: which call this result answers. */
  toolCallId?: string;
  /** Optional participant / tool name. */
  name?: string;
}

export interface ToolDefinition {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown>; strict?: boolean };
}

export type ToolChoice = 'none' | 'auto' | 'required' | { type: 'function'; function: { name: string } };

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; json_schema: { name: string; description?: string; schema?: Record<string, unknown>; strict?: boolean } };

/** Sampling fields shared by chat and (legacy) completions. */
export interface SamplingParams {
  model: string;
  /** Upper bound on generated tokens (OpenAI max_tokens / max_completion_tokens, Ollama num_predict). */
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  /** Not in OpenAI's reference; vLLM, llama.cpp and Ollama take it (Ollama clients send it). */
  topK?: number;
  stop?: readonly string[];
  seed?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** Token id (as text) -> bias -100..100. */
  logitBias?: Record<string, number>;
  logprobs?: boolean;
  topLogprobs?: number;
  /** End-user id, passed to backends that take it (OpenAI). */
  user?: string;
}

export interface ChatRequest extends SamplingParams {
  messages: readonly ChatMessage[];
  tools?: readonly ToolDefinition[];
  toolChoice?: ToolChoice;
  parallelToolCalls?: boolean;
  responseFormat?: ResponseFormat;
}

/** A raw-prompt completion (OpenAI /v1/completions, Ollama /api/generate). */
export interface CompletionRequest extends SamplingParams {
  prompt: string;
}

export interface EmbedRequest {
  model: string;
  input: readonly string[];
  dimensions?: number;
}

export interface EmbedResult {
  vectors: number[][];
  promptTokens: number;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

export interface Timings {
  /** ms from request start to first content token (null when none came). */
  firstTokenMs: number | null;
  totalMs: number;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter';

/** One token's log probability as OpenAI reports it (`choices[].logprobs.content[]`). */
export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes: number[] | null;
  top_logprobs: { token: string; logprob: number; bytes: number[] | null }[];
}

export type ChatChunk =
  | { type: 'delta'; content: string; toolCalls?: ToolCallDelta[]; logprobs?: TokenLogprob[] }
  | { type: 'done'; finishReason: FinishReason; usage: Usage; timings: Timings };

export interface Health {
  ok: boolean;
  latencyMs: number;
  detail: string;
}

export interface ModelInfo {
  id: string;
  backendId: string;
  kind: BackendKind;
  /** True for the embedded simulated backend: never a real model. */
  simulated: boolean;
  /** Currently loaded in memory (Ollama /api/ps), null when unknown. */
  loaded: boolean | null;
}

export interface EmbedRequest { model: string; input: readonly string[]; dimensions?: number }
export interface EmbedResult { vectors: number[][]; promptTokens: number }

/** A backend's own report of what it can run at once and what it runs now (engines). */
export interface BackendLoad { capacity: number; inFlight: number; queued: number; source: string }

export interface Backend {
  readonly id: string;
  readonly kind: BackendKind;
  health(signal?: AbortSignal): Promise<Health>;
  models(signal?: AbortSignal): Promise<ModelInfo[]>;
  /** Streams deltas then one 'done'. Aborting `signal` stops the upstream request. */
  chat(req: ChatRequest, signal?: AbortSignal): AsyncIterable<ChatChunk>;
  /** Raw-prompt completion; absent = the backend has none (ERR_BACKEND_UNSUPPORTED naming it). */
  complete?(req: CompletionRequest, signal?: AbortSignal): AsyncIterable<ChatChunk>;
  /** Embeddings; absent = the backend has none (400 / ERR_BACKEND_UNSUPPORTED naming the backend). */
  embed?(req: EmbedRequest, signal?: AbortSignal): Promise<EmbedResult>;
  /** The backend's own load report (llama-server /slots, vLLM metrics, Ollama /api/ps, embedded sequences); null when it has none (engines). */
  load?(signal?: AbortSignal): Promise<BackendLoad | null>;
}

export type BackendErrorCode =
  | 'ERR_BACKEND_TIMEOUT'
  | 'ERR_BACKEND_UNREACHABLE'
  | 'ERR_BACKEND_HTTP'
  | 'ERR_BACKEND_PROTOCOL'
  | 'ERR_BACKEND_OVERSIZE'
  | 'ERR_BACKEND_ABORTED'
  | 'ERR_BACKEND_BUSY'
  | 'ERR_BACKEND_MODEL_NOT_FOUND'
  | 'ERR_BACKEND_CONFIG'
  /** The backend cannot honour a parameter (data.param) or has no such operation (data.operation). */
  | 'ERR_BACKEND_UNSUPPORTED'
  /** The upstream answered 4xx: the request is at fault (data.status, data.upstreamCode, data.upstreamType, data.param). */
  | 'ERR_UPSTREAM_CLIENT';

export class BackendError extends FednodeError<BackendErrorCode> {
  constructor(code: BackendErrorCode, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, data, options);
    this.name = 'BackendError';
  }
}
