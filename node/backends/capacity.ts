/**
 * What a backend server says it can run at once and runs now (the Backend.load seam), read
 * from each server's own endpoints:
 *   llama.cpp server  GET /slots (one entry per slot, `is_processing`), else GET /props (`total_slots`)
 *   vLLM              GET /metrics (Prometheus: `vllm:num_requests_running`, `vllm:num_requests_waiting`)
 *   Ollama            GET /api/ps (models loaded) x the configured parallelism (OLLAMA_NUM_PARALLEL)
 * The parsers are pure and strict: a body of another shape is no report (null), never a guess.
 * An OpenAI-compatible server is probed in that order once; the flavour that answered is kept.
 */
import { boundedFetch, readBodyText, trimSlash } from './http.js';
import type { HttpLimits } from './http.js';
import type { BackendLoad } from './types.js';

/** Slots counted from one report: more than this is no llama-server we know (bounds a hostile body). */
const MAX_SLOTS = 4096;

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** llama-server GET /slots: an array of slots; `is_processing` (current) or `state` 1 (older builds) is busy. */
export function parseLlamaServerSlots(body: unknown): BackendLoad | null {
  if (!Array.isArray(body) || body.length === 0 || body.length > MAX_SLOTS) return null;
  let busy = 0;
  for (const s of body) {
    if (!isObj(s)) return null;
    const processing = typeof s['is_processing'] === 'boolean' ? s['is_processing'] : typeof s['state'] === 'number' ? s['state'] !== 0 : null;
    if (processing === null) return null;
    if (processing) busy++;
  }
  return { capacity: body.length, inFlight: busy, queued: 0, source: 'llama-server /slots' };
}

/** llama-server GET /props: `total_slots` only (capacity; running counts come from the router). */
export function parseLlamaServerProps(body: unknown): BackendLoad | null {
  if (!isObj(body)) return null;
  const n = body['total_slots'];
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_SLOTS) return null;
  return { capacity: n, inFlight: 0, queued: 0, source: 'llama-server /props (capacity only)' };
}

/**
 * vLLM Prometheus text: sums `vllm:num_requests_running` and `vllm:num_requests_waiting` over
 * their label sets (one per model). vLLM exports no slot count, so capacity is the configured
 * one (`capacity` in the backend's config; null here means "not reported").
 */
export function parseVllmMetrics(text: string, configuredCapacity: number | null): BackendLoad | null {
  let running: number | null = null;
  let waiting: number | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^(vllm:num_requests_(running|waiting))(\{[^}]*\})?\s+([0-9.eE+-]+)/.exec(line);
    if (m === null) continue;
    const v = Number(m[4]);
    if (!Number.isFinite(v) || v < 0) return null;
    if (m[2] === 'running') running = (running ?? 0) + v;
    else waiting = (waiting ?? 0) + v;
  }
  if (running === null || waiting === null) return null;
  return { capacity: configuredCapacity ?? Math.max(1, Math.round(running)), inFlight: Math.round(running), queued: Math.round(waiting), source: configuredCapacity === null ? 'vLLM /metrics (no capacity configured: capacity = running)' : 'vLLM /metrics + config capacity' };
}

/** Ollama GET /api/ps: each loaded model serves `parallel` requests at once (OLLAMA_NUM_PARALLEL); none loaded still serves one model's worth. */
export function parseOllamaPs(body: unknown, parallel: number): BackendLoad | null {
  if (!isObj(body) || !Array.isArray(body['models'])) return null;
  const loaded = body['models'].length;
  return { capacity: parallel * Math.max(1, loaded), inFlight: 0, queued: 0, source: `ollama /api/ps (${loaded} loaded) x parallel ${parallel}` };
}

type Flavour = 'slots' | 'props' | 'vllm' | 'none';

/** Tries the OpenAI-compatible server's own load endpoints; remembers which one answered. */
export class OpenAiServerLoadProbe {
  private flavour: Flavour | null = null;
  private readonly root: string;

  constructor(
    baseUrl: string,
    private readonly headers: Record<string, string>,
    private readonly limits: HttpLimits,
    private readonly configuredCapacity: number | null,
  ) {
    // llama-server and vLLM serve /slots, /props and /metrics beside /v1, at the server root.
    this.root = trimSlash(baseUrl).replace(/\/v1$/, '');
  }

  private async get(path: string, signal?: AbortSignal): Promise<string | null> {
    const url = `${this.root}${path}`;
    const { res, controller } = await boundedFetch(url, { method: 'GET', headers: this.headers }, this.limits, signal);
    if (!res.ok) {
      controller.abort();
      return null;
    }
    return readBodyText(res, this.limits, controller, url);
  }

  private async json(path: string, signal?: AbortSignal): Promise<unknown> {
    const t = await this.get(path, signal);
    if (t === null) return null;
    try {
      return JSON.parse(t) as unknown;
    } catch {
      return null;
    }
  }

  async load(signal?: AbortSignal): Promise<BackendLoad | null> {
    const order: Flavour[] = this.flavour === null ? ['slots', 'props', 'vllm'] : [this.flavour];
    for (const f of order) {
      let r: BackendLoad | null = null;
      if (f === 'slots') r = parseLlamaServerSlots(await this.json('/slots', signal));
      else if (f === 'props') r = parseLlamaServerProps(await this.json('/props', signal));
      else if (f === 'vllm') {
        const t = await this.get('/metrics', signal);
        r = t === null ? null : parseVllmMetrics(t, this.configuredCapacity);
      }
      if (r !== null) {
        this.flavour = f;
        return r;
      }
    }
    // The flavour seen before stopped answering: probe them all next time.
    if (this.flavour !== null) this.flavour = null;
    return null;
  }
}

/** Ollama's load: /api/ps x configured parallelism. */
export async function ollamaLoad(baseUrl: string, parallel: number, limits: HttpLimits, signal?: AbortSignal): Promise<BackendLoad | null> {
  const url = `${trimSlash(baseUrl)}/api/ps`;
  const { res, controller } = await boundedFetch(url, { method: 'GET' }, limits, signal);
  if (!res.ok) {
    controller.abort();
    return null;
  }
  try {
    return parseOllamaPs(JSON.parse(await readBodyText(res, limits, controller, url)) as unknown, parallel);
  } catch {
    return null;
  }
}
