/**
 * Backends declared in config, and the set a node serves from. A node with no
 * backend still routes (its set is empty and it is never a candidate).
 */
import { OllamaBackend } from './ollama.js';
import { OpenAiBackend } from './openai.js';
import { SimulatedBackend } from './simulated.js';
import { LlamaCppBackend } from './llama-cpp.js';
import type { LlamaCppBackendOptions } from './llama-cpp.js';
import type { LlamaCppConfigInput } from './llama-cpp-config.js';
import type { SimulatedBackendOptions } from './simulated.js';
import type { HttpLimits } from './http.js';
import { BackendError } from './types.js';
import type { Backend, ModelInfo } from './types.js';

export * from './types.js';
export { OllamaBackend } from './ollama.js';
export { OpenAiBackend } from './openai.js';
export { SimulatedBackend, simulatedTokens } from './simulated.js';
export { LlamaCppBackend } from './llama-cpp.js';
export { DEFAULT_HTTP_LIMITS } from './http.js';
export type { HttpLimits } from './http.js';

export type BackendConfig =
  | { kind: 'ollama'; id?: string; baseUrl: string; limits?: Partial<HttpLimits> }
  | { kind: 'openai'; id?: string; baseUrl: string; apiKey?: string | null; limits?: Partial<HttpLimits> }
  | ({ kind: 'simulated' } & SimulatedBackendOptions)
  | LlamaCppConfigInput;

/** What a backend may need from the node: where relative paths start, and its logger (llama-cpp). */
export type BackendContext = LlamaCppBackendOptions;

export function createBackend(cfg: BackendConfig, ctx: BackendContext = {}): Backend {
  switch (cfg.kind) {
    case 'ollama':
      return new OllamaBackend(cfg);
    case 'openai':
      return new OpenAiBackend(cfg);
    case 'simulated':
      return new SimulatedBackend(cfg);
    case 'llama-cpp':
      return new LlamaCppBackend(cfg, ctx);
    default: {
      const never: never = cfg;
      throw new BackendError('ERR_BACKEND_CONFIG', `unknown backend kind ${String((never as { kind?: unknown }).kind)}`);
    }
  }
}

/** Bound on models kept per node: a large Ollama library has hundreds; 4096 caps memory. */
export const MAX_MODELS_PER_NODE = 4096;

/**
 * The node's local backends and a cached model -> backend map (refresh() re-reads the
 * model lists; the runtime calls it on start and periodically).
 */
export class BackendSet {
  readonly backends: readonly Backend[];
  private byModel = new Map<string, Backend>();
  private infos: ModelInfo[] = [];
  /** Failures of the last refresh, per backend id. */
  lastErrors: Record<string, string> = {};

  constructor(backends: readonly Backend[]) {
    this.backends = backends;
  }

  async refresh(signal?: AbortSignal): Promise<ModelInfo[]> {
    const byModel = new Map<string, Backend>();
    const infos: ModelInfo[] = [];
    const errors: Record<string, string> = {};
    await Promise.all(
      this.backends.map(async (b) => {
        try {
          for (const m of await b.models(signal)) {
            if (infos.length >= MAX_MODELS_PER_NODE) break;
            if (!byModel.has(m.id)) byModel.set(m.id, b);
            infos.push(m);
          }
        } catch (err) {
          errors[b.id] = err instanceof Error ? err.message : String(err);
        }
      }),
    );
    this.byModel = byModel;
    this.infos = infos;
    this.lastErrors = errors;
    return infos;
  }

  models(): readonly ModelInfo[] {
    return this.infos;
  }

  modelIds(): string[] {
    return [...this.byModel.keys()];
  }

  backendFor(model: string): Backend | null {
    return this.byModel.get(model) ?? null;
  }
}
