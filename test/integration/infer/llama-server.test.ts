// The OpenAI-compatible adapter and the API against REAL llama-server answers, replayed over
// HTTP from recorded transcripts (test/fixtures/infer/llama-server/, see its README).
import { describe, it, expect, afterEach } from 'vitest';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { OpenAiBackend, BackendSet, BackendError } from '../../../node/backends/index.js';
import type { ChatChunk } from '../../../node/backends/index.js';
import { InferenceRouter } from '../../../node/forward/index.js';
import { createApiServer } from '../../../node/api/server.js';
import { readTranscript, replayServer } from '../../helpers/replay-http.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../../fixtures/infer/llama-server/${name}`, import.meta.url));
const rec = (name: string): ReturnType<typeof readTranscript> => readTranscript(fixture(name));
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

async function collect(it: AsyncIterable<ChatChunk>): Promise<ChatChunk[]> {
  const out: ChatChunk[] = [];
  for await (const c of it) out.push(c);
  return out;
}

/** The recorded stream's content deltas and usage, read straight from the transcript. */
function recordedStream(body: string): { text: string; completionTokens: number; finish: string } {
  let text = '';
  let completionTokens = -1;
  let finish = '';
  for (const line of body.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    const j = JSON.parse(line.slice(6)) as { choices: { delta?: { content?: string | null }; finish_reason?: string | null }[]; usage?: { completion_tokens: number } };
    text += j.choices[0]?.delta?.content ?? '';
    finish = j.choices[0]?.finish_reason ?? finish;
    if (j.usage !== undefined) completionTokens = j.usage.completion_tokens;
  }
  return { text, completionTokens, finish };
}

async function apiOver(routes: Record<string, ReturnType<typeof readTranscript>>): Promise<{ client: OpenAI; seen: string[]; upstream: string }> {
  const up = await replayServer(routes);
  closers.push(up.close);
  const backends = new BackendSet([new OpenAiBackend({ baseUrl: `${up.url}/v1`, id: 'llama' })]);
  await backends.refresh();
  const router = new InferenceRouter({ localPeerId: 'local', backends, peers: () => [], forward: null });
  const api = createApiServer({ router });
  const { url } = await api.listen();
  closers.push(() => api.close());
  return { client: new OpenAI({ baseURL: `${url}/v1`, apiKey: 'x', maxRetries: 0 }), seen: up.seen, upstream: up.url };
}

describe('OpenAI-compatible adapter on recorded llama-server answers', () => {
  it('models: the alias from data[] (the Ollama-style models[] beside it is ignored)', async () => {
    const up = await replayServer({ 'GET /v1/models': rec('models.txt') });
    closers.push(up.close);
    const models = await new OpenAiBackend({ baseUrl: `${up.url}/v1` }).models();
    expect(models.map((m) => m.id)).toEqual(['tiny-llama']);
  });

  it('a streamed chat: role chunk with content null, deltas, usage chunk with choices: []', async () => {
    const r = rec('chat-stream.txt');
    const want = recordedStream(r.body);
    const up = await replayServer({ 'POST /v1/chat/completions': r });
    closers.push(up.close);
    const chunks = await collect(new OpenAiBackend({ baseUrl: `${up.url}/v1` }).chat({ model: 'tiny-llama', messages: [{ role: 'user', content: 'Hi there' }], maxTokens: 8 }));
    const done = chunks[chunks.length - 1]!;
    expect(chunks.filter((c) => c.type === 'delta').map((c) => (c.type === 'delta' ? c.content : '')).join('')).toBe(want.text);
    expect(done).toMatchObject({ type: 'done', finishReason: want.finish, usage: { completionTokens: want.completionTokens } });
    expect(want.completionTokens).toBe(8);
  });

  it('a prompt over the context: 400 exceed_context_size_error kept with its status, code and message, no URL', async () => {
    const r = rec('prompt-too-long.txt');
    const up = await replayServer({ 'POST /v1/chat/completions': r });
    closers.push(up.close);
    const err = await collect(new OpenAiBackend({ baseUrl: `${up.url}/v1` }).chat({ model: 'tiny-llama', messages: [{ role: 'user', content: 'x'.repeat(6000) }] })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as BackendError).code).toBe('ERR_UPSTREAM_CLIENT');
    expect((err as BackendError).data).toMatchObject({ status: 400, upstreamCode: 'exceed_context_size_error' });
    expect((err as BackendError).message).not.toContain(up.url);
  });

  it('through the API: the client gets that 400 with the upstream code (not 502), never the upstream URL', async () => {
    const { client, upstream } = await apiOver({ 'GET /v1/models': rec('models.txt'), 'POST /v1/chat/completions': rec('prompt-too-long.txt') });
    const err = (await client.chat.completions.create({ model: 'tiny-llama', messages: [{ role: 'user', content: 'x'.repeat(6000) }] }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.status).toBe(400);
    expect(err.code).toBe('exceed_context_size_error');
    expect(err.message).toContain('exceeds the available context size');
    expect(err.message).not.toContain(upstream);
    expect(err.message).not.toContain('127.0.0.1');
  });

  it('an unknown model is 404 at fednode although llama-server would answer it with its own model', async () => {
    const { client, seen } = await apiOver({ 'GET /v1/models': rec('models.txt'), 'POST /v1/chat/completions': rec('unknown-model.txt') });
    await expect(client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'Hi' }] })).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
    expect(seen).not.toContain('POST /v1/chat/completions');
  });

  it("llama-server's 500 for bad JSON is read as a server fault (ERR_BACKEND_HTTP: fails over), not a client error", async () => {
    const up = await replayServer({ 'POST /v1/chat/completions': rec('bad-json.txt') });
    closers.push(up.close);
    const err = await collect(new OpenAiBackend({ baseUrl: `${up.url}/v1` }).chat({ model: 'tiny-llama', messages: [{ role: 'user', content: 'x' }] })).catch((e: unknown) => e);
    expect((err as BackendError).code).toBe('ERR_BACKEND_HTTP');
    expect((err as BackendError).data['status']).toBe(500);
  });
});
