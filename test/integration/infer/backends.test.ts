// Backend adapters against local HTTP servers that speak the real wire formats
// (responses recorded from Ollama and vLLM, in test/fixtures/infer/).
import { describe, it, expect, afterEach } from 'vitest';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { OllamaBackend, OpenAiBackend, SimulatedBackend, BackendError, BackendSet, simulatedTokens } from '../../../node/backends/index.js';
import type { ChatChunk } from '../../../node/backends/index.js';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'infer');
const fixture = (f: string): string => readFileSync(join(FIX, f), 'utf8');

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;
const servers: Server[] = [];

async function serve(handler: Handler): Promise<string> {
  const s = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => handler(req, res, body));
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function collect(it: AsyncIterable<ChatChunk>): Promise<{ text: string; chunks: ChatChunk[] }> {
  const chunks: ChatChunk[] = [];
  for await (const c of it) chunks.push(c);
  return { text: chunks.map((c) => (c.type === 'delta' ? c.content : '')).join(''), chunks };
}

async function errorOf(p: Promise<unknown>): Promise<BackendError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(BackendError);
    return err as BackendError;
  }
  throw new Error('expected an error');
}

const ndjsonLines = fixture('ollama-chat-stream.ndjson').trim().split('\n');
const sseEvents = fixture('openai-chat-stream.sse').split('\n\n').filter((e) => e.trim() !== '');

describe('Ollama adapter (native API)', () => {
  it('streams /api/chat NDJSON, sends options, reports usage from eval counts', async () => {
    let seen: Record<string, unknown> = {};
    const url = await serve((req, res, body) => {
      expect(req.url).toBe('/api/chat');
      seen = JSON.parse(body) as Record<string, unknown>;
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      let i = 0;
      const tick = (): void => {
        if (i < ndjsonLines.length) {
          res.write(ndjsonLines[i++] + '\n');
          setTimeout(tick, 1);
        } else res.end();
      };
      tick();
    });
    const b = new OllamaBackend({ baseUrl: url });
    const { text, chunks } = await collect(b.chat({ model: 'llama3.2:3b', messages: [{ role: 'user', content: 'Why is the sky blue?' }], maxTokens: 64, temperature: 0.2 }));
    expect(text).toBe('The sky is blue because of Rayleigh scattering.');
    expect(seen).toMatchObject({ model: 'llama3.2:3b', stream: true, options: { num_predict: 64, temperature: 0.2 } });
    const done = chunks.at(-1);
    expect(done).toMatchObject({ type: 'done', finishReason: 'stop', usage: { promptTokens: 31, completionTokens: 10 } });
  });

  it('lists models from /api/tags with loaded state from /api/ps; health from /api/version', async () => {
    const url = await serve((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      if (req.url === '/api/tags') res.end(fixture('ollama-tags.json'));
      else if (req.url === '/api/ps') res.end(fixture('ollama-ps.json'));
      else res.end('{"version":"0.9.0"}');
    });
    const b = new OllamaBackend({ baseUrl: url });
    const models = await b.models();
    expect(models.map((m) => [m.id, m.loaded, m.simulated])).toEqual([
      ['llama3.2:3b', true, false],
      ['qwen2.5:7b', false, false],
    ]);
    expect(await b.health()).toMatchObject({ ok: true, detail: 'ollama 0.9.0' });
  });

  it('maps an unknown model (404 {"error":...}) to ERR_BACKEND_MODEL_NOT_FOUND', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"model \\"nope\\" not found, try pulling it first"}');
    });
    const err = await errorOf(collect(new OllamaBackend({ baseUrl: url }).chat({ model: 'nope', messages: [{ role: 'user', content: 'x' }] })));
    expect(err.code).toBe('ERR_BACKEND_MODEL_NOT_FOUND');
    expect(err.message).toContain('not found');
  });

  it('a server that dies mid-stream gives a typed error after the first tokens', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(ndjsonLines[0] + '\n' + ndjsonLines[1] + '\n');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const got: string[] = [];
    const err = await errorOf(
      (async () => {
        for await (const c of new OllamaBackend({ baseUrl: url }).chat({ model: 'llama3.2:3b', messages: [{ role: 'user', content: 'x' }] })) if (c.type === 'delta') got.push(c.content);
      })(),
    );
    expect(got).toEqual(['The', ' sky']);
    expect(['ERR_BACKEND_UNREACHABLE', 'ERR_BACKEND_PROTOCOL']).toContain(err.code);
  });

  it('a server that never answers times out (headers timeout)', async () => {
    const url = await serve(() => undefined); // never responds
    const b = new OllamaBackend({ baseUrl: url, limits: { headersTimeoutMs: 150 } });
    const err = await errorOf(collect(b.chat({ model: 'm', messages: [{ role: 'user', content: 'x' }] })));
    expect(err.code).toBe('ERR_BACKEND_TIMEOUT');
    expect((await b.health()).ok).toBe(false);
  });

  it('a stream that stalls after headers hits the idle timeout', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(ndjsonLines[0] + '\n');
    });
    const b = new OllamaBackend({ baseUrl: url, limits: { idleTimeoutMs: 150 } });
    const err = await errorOf(collect(b.chat({ model: 'm', messages: [{ role: 'user', content: 'x' }] })));
    expect(err.code).toBe('ERR_BACKEND_TIMEOUT');
  });

  it('refuses an oversize body and garbage lines with clear codes', async () => {
    const big = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ models: [{ name: 'x'.repeat(5000) }] }));
    });
    expect((await errorOf(new OllamaBackend({ baseUrl: big, limits: { maxBodyBytes: 1000 } }).models())).code).toBe('ERR_BACKEND_OVERSIZE');
    const garbage = await serve((_req, res) => {
      res.writeHead(200);
      res.end('this is not json\n');
    });
    expect((await errorOf(collect(new OllamaBackend({ baseUrl: garbage }).chat({ model: 'm', messages: [{ role: 'user', content: 'x' }] })))).code).toBe('ERR_BACKEND_PROTOCOL');
  });

  it('abort stops the upstream request (the server sees the connection close)', async () => {
    let closed!: () => void;
    const serverSawClose = new Promise<void>((r) => (closed = r));
    const url = await serve((req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(ndjsonLines[0] + '\n');
      const t = setInterval(() => res.write(ndjsonLines[1] + '\n'), 10);
      res.on('close', () => {
        clearInterval(t);
        closed();
      });
      void req;
    });
    const ac = new AbortController();
    const p = errorOf(
      (async () => {
        for await (const c of new OllamaBackend({ baseUrl: url }).chat({ model: 'm', messages: [{ role: 'user', content: 'x' }] }, ac.signal)) {
          if (c.type === 'delta') ac.abort();
        }
      })(),
    );
    const err = await p;
    expect(err.code).toBe('ERR_BACKEND_ABORTED');
    await serverSawClose;
  });
});

describe('OpenAI-compatible adapter (vLLM / llama.cpp / TGI / LM Studio / LocalAI)', () => {
  it('streams SSE chat completions with usage, sends bearer key and stream_options', async () => {
    let seen: Record<string, unknown> = {};
    let auth: string | undefined;
    const url = await serve((req, res, body) => {
      expect(req.url).toBe('/v1/chat/completions');
      auth = req.headers['authorization'];
      seen = JSON.parse(body) as Record<string, unknown>;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let i = 0;
      const tick = (): void => {
        if (i < sseEvents.length) {
          res.write(sseEvents[i++] + '\n\n');
          setTimeout(tick, 1);
        } else res.end();
      };
      tick();
    });
    const b = new OpenAiBackend({ baseUrl: `${url}/v1`, apiKey: 'sk-local-test' });
    const { text, chunks } = await collect(b.chat({ model: 'Qwen/Qwen2.5-7B-Instruct', messages: [{ role: 'user', content: 'hi' }], maxTokens: 16 }));
    expect(text).toBe('Hello! How can I help?');
    expect(auth).toBe('Bearer sk-local-test');
    expect(seen).toMatchObject({ stream: true, stream_options: { include_usage: true }, max_tokens: 16 });
    expect(chunks.at(-1)).toMatchObject({ type: 'done', finishReason: 'stop', usage: { promptTokens: 21, completionTokens: 8 } });
  });

  it('servers that send no usage (older llama.cpp / TGI) still get a token count', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(sseEvents.filter((e) => !e.includes('"usage"')).join('\n\n') + '\n\n');
    });
    const { chunks } = await collect(new OpenAiBackend({ baseUrl: `${url}/v1` }).chat({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }));
    const done = chunks.at(-1);
    expect(done?.type).toBe('done');
    if (done?.type === 'done') expect(done.usage.completionTokens).toBeGreaterThanOrEqual(7);
  });

  it('lists /v1/models', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(fixture('openai-models.json'));
    });
    const b = new OpenAiBackend({ baseUrl: `${url}/v1` });
    expect((await b.models()).map((m) => m.id)).toEqual(['Qwen/Qwen2.5-7B-Instruct']);
    expect((await b.health()).ok).toBe(true);
  });

  it('a server that dies mid-stream: deltas then a typed error, no done', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(sseEvents.slice(0, 3).join('\n\n') + '\n\n');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const got: ChatChunk[] = [];
    const err = await errorOf(
      (async () => {
        for await (const c of new OpenAiBackend({ baseUrl: `${url}/v1` }).chat({ model: 'm', messages: [{ role: 'user', content: 'x' }] })) got.push(c);
      })(),
    );
    expect(got.map((c) => (c.type === 'delta' ? c.content : c.type))).toEqual(['Hello', '!']);
    expect(['ERR_BACKEND_UNREACHABLE', 'ERR_BACKEND_PROTOCOL']).toContain(err.code);
  });

  it('a server that never answers times out; an HTTP error carries the server message', async () => {
    const silent = await serve(() => undefined);
    expect((await errorOf(collect(new OpenAiBackend({ baseUrl: `${silent}/v1`, limits: { headersTimeoutMs: 150 } }).chat({ model: 'm', messages: [{ role: 'user', content: 'x' }] })))).code).toBe('ERR_BACKEND_TIMEOUT');
    const failing = await serve((_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end('{"object":"error","message":"This model\'s maximum context length is 32768 tokens.","type":"BadRequestError","param":null,"code":400}');
    });
    const err = await errorOf(collect(new OpenAiBackend({ baseUrl: `${failing}/v1` }).chat({ model: 'm', messages: [{ role: 'user', content: 'x' }] })));
    // a 4xx is the request's fault: kept with its status, type and message (no URL in the message)
    expect(err.code).toBe('ERR_UPSTREAM_CLIENT');
    expect(err.data['status']).toBe(400);
    expect(err.data['upstreamType']).toBe('BadRequestError');
    expect(err.message).toContain('maximum context length is 32768 tokens');
    expect(err.message).not.toContain(failing);
    const broken = await serve((_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end('{"error":{"code":500,"message":"boom","type":"server_error"}}');
    });
    expect((await errorOf(collect(new OpenAiBackend({ baseUrl: `${broken}/v1` }).chat({ model: 'm', messages: [{ role: 'user', content: 'x' }] })))).code).toBe('ERR_BACKEND_HTTP');
  });

  it('an unreachable server is ERR_BACKEND_UNREACHABLE', async () => {
    const url = await serve(() => undefined);
    const s = servers.pop()!;
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
    expect((await errorOf(new OpenAiBackend({ baseUrl: `${url}/v1` }).models())).code).toBe('ERR_BACKEND_UNREACHABLE');
  });
});

describe('simulated backend', () => {
  it('is clearly simulated, deterministic per prompt, and reports usage', async () => {
    const b = new SimulatedBackend({ tokensPerSecond: 0, models: ['simulated'] });
    expect(b.kind).toBe('simulated');
    expect((await b.models())[0]).toMatchObject({ id: 'simulated', simulated: true, kind: 'simulated' });
    expect((await b.health()).detail).toContain('simulated');
    const req = { model: 'simulated', messages: [{ role: 'user' as const, content: 'hello' }], maxTokens: 12 };
    const a = await collect(b.chat(req));
    const c = await collect(b.chat(req));
    const d = await collect(b.chat({ ...req, messages: [{ role: 'user', content: 'other' }] }));
    expect(a.text).toBe(c.text);
    expect(a.text).not.toBe(d.text);
    expect(a.text).toBe(simulatedTokens('simulated', 'user: hello', 12).join(''));
    expect(a.chunks.at(-1)).toMatchObject({ type: 'done', finishReason: 'length', usage: { completionTokens: 12 } });
  });

  it('limits concurrency, bounds its queue, and abort releases the slot', async () => {
    const b = new SimulatedBackend({ tokensPerSecond: 200, concurrency: 1, maxQueue: 1 });
    const req = { model: 'simulated', messages: [{ role: 'user' as const, content: 'x' }], maxTokens: 5 };
    const ac = new AbortController();
    const first = collect(b.chat(req, ac.signal)).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 5));
    const second = collect(b.chat(req));
    await expect.poll(() => b.load()).toEqual({ inFlight: 1, queued: 1, capacity: 1, source: 'simulated concurrency' });
    expect((await errorOf(collect(b.chat(req)))).code).toBe('ERR_BACKEND_BUSY');
    ac.abort();
    expect(((await first) as BackendError).code).toBe('ERR_BACKEND_ABORTED');
    expect((await second).chunks.at(-1)?.type).toBe('done');
    expect(await b.load()).toEqual({ inFlight: 0, queued: 0, capacity: 1, source: 'simulated concurrency' });
  });

  it('BackendSet maps models to backends and survives a failing backend', async () => {
    const dead = await serve(() => undefined);
    const set = new BackendSet([new SimulatedBackend({ models: ['simulated'] }), new OllamaBackend({ baseUrl: dead, limits: { headersTimeoutMs: 100 } })]);
    const models = await set.refresh();
    expect(models.map((m) => m.id)).toEqual(['simulated']);
    expect(set.backendFor('simulated')?.kind).toBe('simulated');
    expect(set.backendFor('nope')).toBeNull();
    expect(Object.values(set.lastErrors)[0]).toContain('no response headers');
  });
});

describe('the full chat surface on the wire of each backend kind', () => {
  const tools = [{ type: 'function' as const, function: { name: 'get_weather', description: 'weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];

  it('Ollama: tools, format (schema), options and tool history mapped; a whole tool call comes back as one delta, finish tool_calls', async () => {
    let sent: Record<string, unknown> = {};
    const url = await serve((req, res, body) => {
      sent = JSON.parse(body) as Record<string, unknown>;
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(`${JSON.stringify({ model: 'm', message: { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Oslo' } } }] }, done: false })}\n`);
      res.end(`${JSON.stringify({ model: 'm', message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop', prompt_eval_count: 9, eval_count: 4 })}\n`);
    });
    const { chunks } = await collect(
      new OllamaBackend({ baseUrl: url }).chat({
        model: 'm',
        messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: '', toolCalls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Rome"}' } }] }, { role: 'tool', content: 'hot', toolCallId: 'c1', name: 'get_weather' }],
        tools,
        responseFormat: { type: 'json_schema', json_schema: { name: 's', schema: { type: 'object' } } },
        maxTokens: 7,
        temperature: 0.2,
        topK: 5,
        seed: 1,
        presencePenalty: 0.5,
        stop: ['x'],
      }),
    );
    expect(sent['tools']).toEqual(tools);
    expect(sent['format']).toEqual({ type: 'object' });
    expect(sent['options']).toEqual({ num_predict: 7, temperature: 0.2, top_k: 5, seed: 1, presence_penalty: 0.5, stop: ['x'] });
    expect((sent['messages'] as unknown[])[1]).toEqual({ role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Rome' } } }] });
    expect((sent['messages'] as unknown[])[2]).toEqual({ role: 'tool', content: 'hot', tool_name: 'get_weather' });
    const d = chunks[0] as Extract<ChatChunk, { type: 'delta' }>;
    expect(d.toolCalls![0]).toMatchObject({ index: 0, type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } });
    expect(chunks.at(-1)).toMatchObject({ type: 'done', finishReason: 'tool_calls', usage: { promptTokens: 9, completionTokens: 4 } });
    // what Ollama cannot do is refused before anything is sent
    await expect(collect(new OllamaBackend({ baseUrl: url }).chat({ model: 'm', messages: [{ role: 'user', content: 'q' }], logitBias: { '1': 1 } }))).rejects.toMatchObject({ code: 'ERR_BACKEND_UNSUPPORTED', data: { param: 'logit_bias' } });
  });

  it('OpenAI-compatible: every field sent in OpenAI names; tool-call fragments and logprobs come back unchanged', async () => {
    let sent: Record<string, unknown> = {};
    const url = await serve((req, res, body) => {
      sent = JSON.parse(body) as Record<string, unknown>;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const ev = (o: unknown): string => `data: ${JSON.stringify(o)}\n\n`;
      res.write(ev({ choices: [{ index: 0, delta: { role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'call_9', type: 'function', function: { name: 'get_weather', arguments: '' } }] } }] }));
      res.write(ev({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] } }] }));
      res.write(ev({ choices: [{ index: 0, delta: { content: 'ok' }, logprobs: { content: [{ token: 'ok', logprob: -0.1, bytes: [111, 107], top_logprobs: [] }] } }] }));
      res.write(ev({ choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] }));
      res.write(ev({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 2 } }));
      res.end('data: [DONE]\n\n');
    });
    const { chunks } = await collect(
      new OpenAiBackend({ baseUrl: `${url}/v1` }).chat({ model: 'm', messages: [{ role: 'user', content: 'q' }], tools, toolChoice: 'required', parallelToolCalls: false, logitBias: { '5': -1 }, logprobs: true, topLogprobs: 2, frequencyPenalty: 0.3, user: 'u', responseFormat: { type: 'json_object' } }),
    );
    expect(sent).toMatchObject({ tools, tool_choice: 'required', parallel_tool_calls: false, logit_bias: { '5': -1 }, logprobs: true, top_logprobs: 2, frequency_penalty: 0.3, user: 'u', response_format: { type: 'json_object' }, stream: true });
    const deltas = chunks.filter((c): c is Extract<ChatChunk, { type: 'delta' }> => c.type === 'delta');
    expect(deltas[0]!.toolCalls).toEqual([{ index: 0, id: 'call_9', type: 'function', function: { name: 'get_weather', arguments: '' } }]);
    expect(deltas[1]!.toolCalls).toEqual([{ index: 0, function: { arguments: '{"city":' } }]);
    expect(deltas[2]!.logprobs![0]!.token).toBe('ok');
    expect(chunks.at(-1)).toMatchObject({ finishReason: 'tool_calls', usage: { promptTokens: 3, completionTokens: 2 } });
  });
});
