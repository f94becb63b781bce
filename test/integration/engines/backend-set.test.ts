// The node's backend set over real HTTP servers that answer like llama-server, vLLM and Ollama:
// load reports feed capacity, health checks and request failures take models out, the
// handshake keeps a model that cannot answer out of the advert.
import { describe, it, expect, afterEach } from 'vitest';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BackendSet, backendFromConfig, SimulatedBackend, BackendError, DEFAULT_BACKEND_CAPACITY } from '../../../node/backends/index.js';
import type { Backend, ChatChunk, ChatRequest } from '../../../node/backends/index.js';
import { healthConfigSchema } from '../../../node/backends/health.js';

const FIX = join(import.meta.dirname, '..', '..', 'fixtures');
const fixture = (f: string): string => readFileSync(join(FIX, f), 'utf8');
const servers: Server[] = [];

async function serve(routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void>): Promise<string> {
  const s = createServer((req, res) => {
    const h = routes[req.url ?? ''];
    if (h === undefined) {
      res.writeHead(404).end('not found');
      return;
    }
    h(req, res);
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}
const json = (body: string) => (_: IncomingMessage, res: ServerResponse) => res.writeHead(200, { 'content-type': 'application/json' }).end(body);

afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

const models = JSON.stringify({ object: 'list', data: [{ id: 'm1', object: 'model' }] });

describe('backend load feeds capacity', () => {
  it('llama-server /slots, vLLM /metrics, Ollama /api/ps, config capacity, and the default', async () => {
    const llama = await serve({ '/v1/models': json(models), '/slots': json(fixture('engines/llama-server-slots.json')) });
    const vllm = await serve({ '/v1/models': json(models), '/metrics': (_q, r) => r.writeHead(200, { 'content-type': 'text/plain' }).end(fixture('engines/vllm-metrics.txt')) });
    const ollama = await serve({ '/api/tags': json(fixture('infer/ollama-tags.json')), '/api/ps': json(fixture('infer/ollama-ps.json')) });
    const bare = await serve({ '/v1/models': json(models) });
    const set = new BackendSet([
      backendFromConfig({ kind: 'openai', id: 'llama', baseUrl: `${llama}/v1` }),
      backendFromConfig({ kind: 'openai', id: 'vllm', baseUrl: `${vllm}/v1`, capacity: 16 }),
      backendFromConfig({ kind: 'ollama', id: 'ollama', baseUrl: ollama, parallel: 3 }),
      backendFromConfig({ kind: 'openai', id: 'bare', baseUrl: `${bare}/v1` }),
      backendFromConfig({ kind: 'simulated', id: 'sim', concurrency: 5 }),
    ]);
    await set.refresh();
    await set.pollLoad();
    const byId = Object.fromEntries(set.status().map((s) => [s.id, s.load]));
    expect(byId['llama']).toMatchObject({ capacity: 2, inFlight: 1, source: 'llama-server /slots' });
    expect(byId['vllm']).toMatchObject({ capacity: 16, inFlight: 2, queued: 3 });
    expect(byId['ollama']).toMatchObject({ capacity: 3, source: 'ollama /api/ps (1 loaded) x parallel 3' });
    expect(byId['bare']).toMatchObject({ capacity: DEFAULT_BACKEND_CAPACITY, source: 'default (no report)' });
    expect(byId['sim']).toMatchObject({ capacity: 5, source: 'simulated concurrency' });
    expect(set.load()).toEqual({ capacity: 2 + 16 + 3 + 4 + 5, inFlight: 3, queued: 3 });
  });

  it('names bad node-level fields of a backend entry', () => {
    expect(() => backendFromConfig({ kind: 'openai', baseUrl: 'http://127.0.0.1:1/v1', capacity: 0 } as never)).toThrow(/capacity must be an integer 1\.\.4096/);
    expect(() => backendFromConfig({ kind: 'openai', baseUrl: 'http://127.0.0.1:1/v1', parallel: 2 } as never)).toThrow(/parallel applies to ollama backends only/);
    expect(() => backendFromConfig({ kind: 'simulated', health: { interval: 5 } } as never)).toThrow(/health: interval: unknown field/);
  });
});

class Flaky implements Backend {
  readonly kind = 'simulated' as const;
  healthy = true;
  failChat = false;
  constructor(readonly id: string, private readonly modelIds: string[], private readonly badModel: string | null = null) {}
  health() {
    return Promise.resolve({ ok: this.healthy, latencyMs: 0, detail: this.healthy ? 'ok' : 'connection refused' });
  }
  models() {
    return Promise.resolve(this.modelIds.map((id) => ({ id, backendId: this.id, kind: this.kind, simulated: true, loaded: true })));
  }
  async *chat(req: ChatRequest): AsyncIterable<ChatChunk> {
    await Promise.resolve();
    if (this.failChat || req.model === this.badModel) throw new BackendError('ERR_BACKEND_HTTP', 'HTTP 500: model failed to load', { status: 500 });
    yield { type: 'delta', content: 'x' };
    yield { type: 'done', finishReason: 'stop', usage: { promptTokens: 1, completionTokens: 1 }, timings: { firstTokenMs: 0, totalMs: 0 } };
  }
}

async function drain(it: AsyncIterable<ChatChunk>): Promise<unknown> {
  try {
    for await (const _ of it) void _;
    return null;
  } catch (e) {
    return e;
  }
}

describe('backend health decides what is served', () => {
  it('active checks: failureThreshold failures take the models out, successThreshold bring them back', async () => {
    let now = 0;
    const flaky = new Flaky('flaky', ['a']);
    const set = new BackendSet([{ backend: flaky, capacity: null, health: healthConfigSchema.parse({ intervalMs: 100, failureThreshold: 2, successThreshold: 1 }) }, new SimulatedBackend({ models: ['s'] })], { now: () => now });
    await set.refresh();
    expect(set.modelIds().sort()).toEqual(['a', 's']);
    flaky.healthy = false;
    expect(await set.checkHealth()).toBe(false);
    now += 100;
    expect(await set.checkHealth()).toBe(true);
    expect(set.modelIds()).toEqual(['s']);
    expect(set.backendFor('a')).toBeNull();
    expect(set.status().find((s) => s.id === 'flaky')).toMatchObject({ healthy: false, reason: 'health check failed 2x: connection refused' });
    expect(set.load().capacity).toBe(4); // only the healthy simulated backend counts
    flaky.healthy = true;
    now += 50;
    await set.checkHealth(); // not due yet (interval 100)
    expect(set.modelIds()).toEqual(['s']);
    now += 50;
    expect(await set.checkHealth()).toBe(true);
    expect(set.modelIds().sort()).toEqual(['a', 's']);
  });

  it('passive: consecutive failed requests eject the backend for a cooldown; client errors do not count', async () => {
    let now = 0;
    const flaky = new Flaky('flaky', ['a']);
    const set = new BackendSet([{ backend: flaky, capacity: null, health: healthConfigSchema.parse({ passiveFailures: 2, cooldownBaseMs: 1000 }) }], { now: () => now });
    await set.refresh();
    const b = set.backendFor('a');
    expect(b?.id).toBe('flaky');
    // A client's own error (aborted) is not the backend's fault.
    // eslint-disable-next-line require-yield -- a stream that fails before its first chunk
    const aborted = async function* (): AsyncIterable<ChatChunk> {
      await Promise.resolve();
      throw new BackendError('ERR_BACKEND_ABORTED', 'aborted');
    };
    flaky.chat = aborted;
    for (let i = 0; i < 3; i++) await drain(set.backendFor('a')!.chat({ model: 'a', messages: [] }));
    expect(set.modelIds()).toEqual(['a']);
    flaky.chat = Flaky.prototype.chat.bind(flaky);
    flaky.failChat = true;
    expect(await drain(set.backendFor('a')!.chat({ model: 'a', messages: [] }))).toBeInstanceOf(BackendError);
    expect(set.modelIds()).toEqual(['a']);
    await drain(set.backendFor('a')!.chat({ model: 'a', messages: [] }));
    expect(set.modelIds()).toEqual([]);
    expect(set.status()[0]?.reason).toMatch(/ejected after 2 consecutive failed requests/);
    now = 1000;
    expect(set.modelIds()).toEqual(['a']); // cooldown over: back in
  });

  it('handshake: a model that cannot answer a 1-token completion is not advertised', async () => {
    const flaky = new Flaky('hs', ['good', 'broken'], 'broken');
    const set = new BackendSet([{ backend: flaky, capacity: null, health: healthConfigSchema.parse({ handshake: true }) }]);
    await set.refresh();
    expect(set.modelIds().sort()).toEqual(['broken', 'good']);
    await set.handshake();
    expect(set.modelIds()).toEqual(['good']);
    expect(set.status()[0]?.failedModels['broken']).toMatch(/handshake \(1-token completion\) failed: HTTP 500/);
  });
});
