/**
 * Backends declared in config, and the set a node serves from (backend-set.ts). A node
 * with no backend still routes (its set is empty and it is never a candidate).
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
import type { Backend, BackendLoad } from './types.js';
import { DEFAULT_HTTP_LIMITS } from './http.js';
import { OpenAiServerLoadProbe, ollamaLoad } from './capacity.js';
import { healthConfigSchema } from './health.js';
import type { BackendEntry } from './backend-set.js';

export * from './types.js';
export { OllamaBackend } from './ollama.js';
export { OpenAiBackend } from './openai.js';
export { SimulatedBackend, simulatedTokens, simulatedVector } from './simulated.js';
export { assertSupported } from './params.js';
export { LlamaCppBackend } from './llama-cpp.js';
export { DEFAULT_HTTP_LIMITS } from './http.js';
export { BackendSet, MAX_MODELS_PER_NODE, DEFAULT_BACKEND_CAPACITY, isUpstreamFault } from './backend-set.js';
export type { BackendEntry, BackendStatus, BackendLoadView } from './backend-set.js';
export type { HealthConfig, HealthView } from './health.js';
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

/** Give a backend the load seam from a probe, unless it has its own. */
function attachLoad(b: Backend, load: (signal?: AbortSignal) => Promise<BackendLoad | null>): void {
  if (!('load' in b)) b.load = load;
}

/** Fields of a config entry that belong to the node, not to the backend's own options. */
const NODE_FIELDS = ['capacity', 'health', 'parallel'] as const;

/**
 * A config entry as the node uses it: the backend, its configured capacity, its health
 * settings, and (for ollama and openai servers) the load probe wired in as Backend.load.
 */
export function backendFromConfig(cfg: BackendConfig & { capacity?: unknown; health?: unknown; parallel?: unknown }, ctx: BackendContext = {}): BackendEntry {
  const raw = cfg as unknown as Record<string, unknown>;
  const own: Record<string, unknown> = { ...raw };
  for (const k of NODE_FIELDS) if (!(cfg.kind === 'llama-cpp' && k === 'capacity')) delete own[k];
  const capacity = raw['capacity'] ?? null;
  if (capacity !== null && !(typeof capacity === 'number' && Number.isInteger(capacity) && capacity >= 1 && capacity <= 4096)) throw new BackendError('ERR_BACKEND_CONFIG', `capacity must be an integer 1..4096 (concurrent requests), got ${JSON.stringify(capacity)}`, { capacity });
  const parallel = raw['parallel'];
  if (parallel !== undefined && cfg.kind !== 'ollama') throw new BackendError('ERR_BACKEND_CONFIG', `parallel applies to ollama backends only (its OLLAMA_NUM_PARALLEL); use capacity for ${cfg.kind}`, { kind: cfg.kind });
  if (parallel !== undefined && !(typeof parallel === 'number' && Number.isInteger(parallel) && parallel >= 1 && parallel <= 256)) throw new BackendError('ERR_BACKEND_CONFIG', `parallel must be an integer 1..256 (the server's OLLAMA_NUM_PARALLEL), got ${JSON.stringify(parallel)}`, { parallel });
  const h = healthConfigSchema.safeParse(raw['health'] ?? {});
  if (!h.success) throw new BackendError('ERR_BACKEND_CONFIG', `health: ${h.error.issues.map((i) => (i.code === 'unrecognized_keys' ? i.keys.map((k) => `${k}: unknown field`).join('; ') : `${i.path.map(String).join('.')}: ${i.message}`)).join('; ')}`, {});
  const backend: Backend = createBackend(own as unknown as BackendConfig, ctx);
  if (backend instanceof OpenAiBackend) {
    const o = own as { baseUrl: string; apiKey?: string | null; limits?: Partial<HttpLimits> };
    const probe = new OpenAiServerLoadProbe(o.baseUrl, o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}, { ...DEFAULT_HTTP_LIMITS, ...(o.limits ?? {}), headersTimeoutMs: 2000 }, capacity);
    attachLoad(backend, (s) => probe.load(s));
  } else if (backend instanceof OllamaBackend) {
    const o = own as { baseUrl: string; limits?: Partial<HttpLimits> };
    const limits = { ...DEFAULT_HTTP_LIMITS, ...(o.limits ?? {}), headersTimeoutMs: 2000 };
    // Ollama's own default: OLLAMA_NUM_PARALLEL is 1 on small hosts (4 only where memory allows): 1 is the safe guess.
    const par = (parallel) ?? 1;
    attachLoad(backend, (s) => ollamaLoad(o.baseUrl, par, limits, s));
  }
  return { backend, capacity: cfg.kind === 'llama-cpp' ? null : (capacity), health: h.data };
}
