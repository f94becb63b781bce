/**
 * One interface for every inference backend (Ollama, OpenAI-compatible servers, the
 * embedded simulated backend). Chat streams are AsyncIterables of chunks that end with
 * exactly one 'done' chunk carrying usage and timings; errors are thrown BackendErrors.
 */
import { FednodeError } from '../../base/errors.js';

export type BackendKind = 'ollama' | 'openai' | 'simulated' | 'llama-cpp';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
}

export interface ChatRequest {
  model: string;
  messages: readonly ChatMessage[];
  /** Upper bound on generated tokens (OpenAI max_tokens / Ollama num_predict). */
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  stop?: readonly string[];
  seed?: number;
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

export type FinishReason = 'stop' | 'length';

export type ChatChunk =
  | { type: 'delta'; content: string }
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
  /** Embeddings; a backend without it answers 400 / ERR_BACKEND_UNSUPPORTED naming the backend. */
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
  | 'ERR_BACKEND_UNSUPPORTED';

export class BackendError extends FednodeError<BackendErrorCode> {
  constructor(code: BackendErrorCode, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, data, options);
    this.name = 'BackendError';
  }
}
