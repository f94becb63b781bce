// Real client libraries against a real 3-node cluster (libp2p over TCP on 127.0.0.1, HTTP
// API on each node): the official `openai` SDK, the Vercel AI SDK (`ai` +
// `@ai-sdk/openai-compatible`), LangChain (`@langchain/openai`) and the `ollama` client.
// Node 0 has no backend: every request it gets is forwarded to node 1 or 2 (simulated
// backends: deterministic tokens, a deterministic tool call when tools are offered, JSON
// that fits a schema, deterministic embedding vectors). Node 2 also serves 'slow' (20
// tokens/s) for abort tests.
import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import OpenAI from 'openai';
import { generateText, streamText, embed, embedMany, generateObject, jsonSchema, tool, stepCountIs, APICallError } from 'ai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { ChatOpenAI, OpenAIEmbeddings } from '@langchain/openai';
import { HumanMessage, ToolMessage } from '@langchain/core/messages';
import type { AIMessage } from '@langchain/core/messages';
import { Ollama } from 'ollama';
import { SimulatedBackend, simulatedVector } from '../../../node/backends/index.js';
import { startCluster } from '../../helpers/infer-cluster.js';
import type { TestNode } from '../../helpers/infer-cluster.js';

let cluster: Awaited<ReturnType<typeof startCluster>>;
let n0: TestNode;
let n1: TestNode;
let n2: TestNode;

beforeAll(async () => {
  cluster = await startCluster({
    size: 3,
    seedBase: 60,
    backends: (i) =>
      i === 0
        ? []
        : i === 1
          ? [new SimulatedBackend({ id: 'sim', tokensPerSecond: 0, concurrency: 8, models: ['simulated'] })]
          : [new SimulatedBackend({ id: 'sim', tokensPerSecond: 0, concurrency: 8, models: ['simulated'] }), new SimulatedBackend({ id: 'slow', tokensPerSecond: 20, concurrency: 4, models: ['slow'], defaultMaxTokens: 400 })],
  });
  [n0, n1, n2] = cluster.nodes as [TestNode, TestNode, TestNode];
});

afterAll(async () => {
  await cluster.stop();
});

const weatherParams: { type: 'object'; properties: Record<string, { type: 'string' | 'integer'; minimum?: number }>; required: string[] } = { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 1 } }, required: ['city', 'days'] };
const personSchema: { type: 'object'; properties: Record<string, { type: 'string' | 'integer' | 'array'; items?: { type: 'string' } }>; required: string[]; additionalProperties: false } = {
  type: 'object',
  properties: { name: { type: 'string' }, age: { type: 'integer' }, tags: { type: 'array', items: { type: 'string' } } },
  required: ['name', 'age', 'tags'],
  additionalProperties: false,
};
/** LangChain message content as text (string content in these tests). */
const textOf = (c: unknown): string => (typeof c === 'string' ? c : JSON.stringify(c));
const servers = (): string[] => [n1.peerId, n2.peerId];
/** Waits until no request runs on node 2's backends (the aborted one was cancelled there). */
const slowIdle = (): Promise<void> => vi.waitFor(() => expect(n2.router.localLoad().inFlight + n2.router.localLoad().queued).toBe(0), { timeout: 5000, interval: 20 });

describe('openai SDK', () => {
  const client = (): OpenAI => new OpenAI({ baseURL: `${n0.url}/v1`, apiKey: 'unused-on-loopback', maxRetries: 0 });

  it('chat, stream with include_usage (usage: null on every chunk but the last)', async () => {
    const r = await client().chat.completions.create({ model: 'simulated', messages: [{ role: 'user', content: 'hello' }], max_tokens: 5 });
    expect(r.choices[0]!.message.content!.split(' ')).toHaveLength(5);
    expect(r.choices[0]!.finish_reason).toBe('length');
    const stream = await client().chat.completions.create({ model: 'simulated', messages: [{ role: 'user', content: 'hello' }], max_tokens: 5, stream: true, stream_options: { include_usage: true } });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    const last = chunks[chunks.length - 1]!;
    expect(last.choices).toEqual([]);
    expect(last.usage!.completion_tokens).toBe(5);
    for (const c of chunks.slice(0, -1)) expect(c.usage).toBeNull();
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(r.choices[0]!.message.content);
  });

  it('stop cuts the text before the stop string', async () => {
    const full = (await client().chat.completions.create({ model: 'simulated', messages: [{ role: 'user', content: 'stop test' }], max_tokens: 12 })).choices[0]!.message.content!;
    const stopAt = full.split(' ').slice(3, 5).join(' ');
    const r = await client().chat.completions.create({ model: 'simulated', messages: [{ role: 'user', content: 'stop test' }], max_tokens: 12, stop: [stopAt] });
    expect(r.choices[0]!.message.content).toBe(full.slice(0, full.indexOf(stopAt)));
    expect(r.choices[0]!.finish_reason).toBe('stop');
  });

  it('tools: a tool call (not streamed), then the tool result round trip answers in text', async () => {
    const tools: OpenAI.ChatCompletionTool[] = [{ type: 'function', function: { name: 'get_weather', description: 'weather for a city', parameters: weatherParams } }];
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'weather in Oslo?' }];
    const r = await client().chat.completions.create({ model: 'simulated', messages, tools, tool_choice: 'auto' });
    const choice = r.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    const call = choice.message.tool_calls![0]!;
    expect(call.type).toBe('function');
    if (call.type !== 'function') throw new Error('unreachable');
    expect(call.function.name).toBe('get_weather');
    const args = JSON.parse(call.function.arguments) as { city: unknown; days: unknown };
    expect(typeof args.city).toBe('string');
    expect(args.days).toBe(1);
    messages.push(choice.message, { role: 'tool', tool_call_id: call.id, content: 'sunny, 21 C' });
    const r2 = await client().chat.completions.create({ model: 'simulated', messages, tools });
    expect(r2.choices[0]!.finish_reason).not.toBe('tool_calls');
    expect(r2.choices[0]!.message.content!.length).toBeGreaterThan(0);
    expect(r2.choices[0]!.message.tool_calls).toBeUndefined();
  });

  it('tools streamed: delta.tool_calls fragments assemble to the same call', async () => {
    const tools: OpenAI.ChatCompletionTool[] = [{ type: 'function', function: { name: 'get_weather', parameters: weatherParams } }];
    const body = { model: 'simulated', messages: [{ role: 'user' as const, content: 'weather in Oslo?' }], tools };
    const whole = (await client().chat.completions.create(body)).choices[0]!.message.tool_calls![0]!;
    const stream = await client().chat.completions.create({ ...body, stream: true });
    let id = '';
    let name = '';
    let args = '';
    let finish: string | null = null;
    let fragments = 0;
    for await (const c of stream) {
      for (const t of c.choices[0]?.delta.tool_calls ?? []) {
        expect(t.index).toBe(0);
        fragments++;
        id += t.id ?? '';
        name += t.function?.name ?? '';
        args += t.function?.arguments ?? '';
      }
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(fragments).toBeGreaterThan(2);
    expect(finish).toBe('tool_calls');
    if (whole.type !== 'function') throw new Error('unreachable');
    expect({ id, name, args }).toEqual({ id: whole.id, name: whole.function.name, args: whole.function.arguments });
  });

  it('structured output: json_schema content parses and fits the schema', async () => {
    const r = await client().chat.completions.create({ model: 'simulated', messages: [{ role: 'user', content: 'a person' }], response_format: { type: 'json_schema', json_schema: { name: 'person', schema: personSchema, strict: true } } });
    const v = JSON.parse(r.choices[0]!.message.content!) as { name: unknown; age: unknown; tags: unknown };
    expect(Object.keys(v)).toEqual(['name', 'age', 'tags']); // the schema's property order survives the wire
    expect(typeof v.name).toBe('string');
    expect(Number.isInteger(v.age)).toBe(true);
    expect(Array.isArray(v.tags)).toBe(true);
  });

  it('embeddings (the SDK asks for base64): deterministic vectors, one per input', async () => {
    const r = await client().embeddings.create({ model: 'simulated', input: ['alpha', 'beta', 'alpha'] });
    expect(r.data).toHaveLength(3);
    const v = r.data.map((d) => d.embedding);
    expect(v[0]).toHaveLength(64);
    expect(v[0]).toEqual(v[2]);
    expect(v[0]).not.toEqual(v[1]);
    const want = simulatedVector('simulated', 'alpha', 64);
    v[0]!.forEach((x, i) => expect(x).toBeCloseTo(want[i]!, 6)); // float32 on the wire
    const f = await client().embeddings.create({ model: 'simulated', input: 'alpha', encoding_format: 'float', dimensions: 8 });
    expect(f.data[0]!.embedding).toEqual(simulatedVector('simulated', 'alpha', 8));
  });

  it('completions, models/{id}, responses (text, stream events, tool call round trip)', async () => {
    const c = await client().completions.create({ model: 'simulated', prompt: 'Once upon a time', max_tokens: 4 });
    expect(c.object).toBe('text_completion');
    expect(c.choices[0]!.text.split(' ')).toHaveLength(4);
    expect((await client().models.retrieve('simulated')).id).toBe('simulated');
    await expect(client().models.retrieve('nope')).rejects.toMatchObject({ status: 404 });

    const r = await client().responses.create({ model: 'simulated', input: 'hi there', max_output_tokens: 6 });
    expect(r.output_text.split(' ')).toHaveLength(6);
    expect(r.usage!.output_tokens).toBe(6);

    const events: string[] = [];
    let text = '';
    for await (const e of await client().responses.create({ model: 'simulated', input: 'hi there', max_output_tokens: 6, stream: true })) {
      events.push(e.type);
      if (e.type === 'response.output_text.delta') text += e.delta;
    }
    expect(text).toBe(r.output_text);
    const distinct = events.filter((t, i) => t !== events[i - 1]);
    expect(distinct).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.incomplete', // max_output_tokens reached
    ]);

    const tools: OpenAI.Responses.FunctionTool[] = [{ type: 'function', name: 'get_weather', parameters: weatherParams, strict: true }];
    const t1 = await client().responses.create({ model: 'simulated', input: 'weather in Oslo?', tools });
    const fc = t1.output.find((o) => o.type === 'function_call');
    expect(fc).toMatchObject({ type: 'function_call', name: 'get_weather' });
    if (fc?.type !== 'function_call') throw new Error('unreachable');
    const t2 = await client().responses.create({ model: 'simulated', tools, input: [{ role: 'user', content: 'weather in Oslo?' }, fc, { type: 'function_call_output', call_id: fc.call_id, output: 'sunny' }] });
    expect(t2.output_text.length).toBeGreaterThan(0);
    expect(t2.output.some((o) => o.type === 'function_call')).toBe(false);
  });

  it('abort mid-stream cancels the request on the serving node', async () => {
    const ac = new AbortController();
    const stream = await client().chat.completions.create({ model: 'slow', messages: [{ role: 'user', content: 'long' }], stream: true }, { signal: ac.signal });
    let got = 0;
    // openai v6 ends the iteration quietly on abort (others throw): either way no more chunks come
    await (async () => {
      for await (const c of stream) {
        if ((c.choices[0]?.delta.content ?? '') !== '' && ++got === 2) ac.abort();
      }
    })().catch(() => undefined);
    expect(got).toBe(2);
    expect(ac.signal.aborted).toBe(true);
    await slowIdle(); // 400 tokens at 20/s would run 20 s: idle within 5 s means the serving node cancelled
  });

  it('errors: unknown model 404, unsupported parameter 400 naming it, unknown field 400, bad tool_choice 400', async () => {
    await expect(client().chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
    await expect(client().chat.completions.create({ model: 'simulated', messages: [{ role: 'user', content: 'x' }], logit_bias: { '42': 5 } })).rejects.toMatchObject({ status: 400, code: 'unsupported_parameter', param: 'logit_bias' });
    await expect(client().chat.completions.create({ model: 'simulated', messages: [{ role: 'user', content: 'x' }], presence_penalty: 0.5 })).rejects.toMatchObject({ status: 400, param: 'presence_penalty' });
    await expect(client().chat.completions.create({ model: 'simulated', messages: [{ role: 'user', content: 'x' }], functions: [{ name: 'f' }] } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming)).rejects.toMatchObject({
      status: 400,
      param: 'functions',
    });
    await expect(
      client().chat.completions.create({ model: 'simulated', messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'a' } }], tool_choice: { type: 'function', function: { name: 'b' } } }),
    ).rejects.toMatchObject({ status: 400, code: 'invalid_tool_choice', param: 'tool_choice' });
  });
});

describe('Vercel AI SDK (@ai-sdk/openai-compatible)', () => {
  const provider = (): ReturnType<typeof createOpenAICompatible> => createOpenAICompatible({ name: 'fednode', baseURL: `${n0.url}/v1`, includeUsage: true, supportsStructuredOutputs: true });

  it('generateText and streamText with usage', async () => {
    const g = await generateText({ model: provider()('simulated'), prompt: 'hello', maxOutputTokens: 6, maxRetries: 0 });
    expect(g.text.split(' ')).toHaveLength(6);
    expect(g.usage.outputTokens).toBe(6);
    const s = streamText({ model: provider()('simulated'), prompt: 'hello', maxOutputTokens: 6, maxRetries: 0 });
    let text = '';
    for await (const t of s.textStream) text += t;
    expect(text).toBe(g.text);
    expect((await s.usage).outputTokens).toBe(6);
  });

  it('tools with a tool-result round trip (generateText and streamText, two steps)', async () => {
    const seen: unknown[] = [];
    const tools = {
      get_weather: tool({
        description: 'weather for a city',
        inputSchema: jsonSchema<{ city: string; days: number }>(weatherParams),
        execute: ({ city }) => {
          seen.push(city);
          return Promise.resolve(`sunny in ${city}`);
        },
      }),
    };
    const g = await generateText({ model: provider()('simulated'), prompt: 'weather in Oslo?', tools, stopWhen: stepCountIs(2), maxRetries: 0 });
    expect(g.steps).toHaveLength(2);
    expect(g.steps[0]!.toolCalls[0]!.toolName).toBe('get_weather');
    expect(g.steps[0]!.finishReason).toBe('tool-calls');
    expect(g.text.length).toBeGreaterThan(0);
    const s = streamText({ model: provider()('simulated'), prompt: 'weather in Oslo?', tools, stopWhen: stepCountIs(2), maxRetries: 0 });
    let text = '';
    for await (const t of s.textStream) text += t;
    expect((await s.steps)[0]!.toolCalls[0]!.toolName).toBe('get_weather');
    expect(text).toBe(g.text);
    expect(seen).toHaveLength(2);
  });

  it('structured output, embeddings, abort, errors', async () => {
    const o = await generateObject({ model: provider()('simulated'), schema: jsonSchema<{ name: string; age: number; tags: string[] }>(personSchema), prompt: 'a person', maxRetries: 0 });
    expect(typeof o.object.name).toBe('string');
    expect(Number.isInteger(o.object.age)).toBe(true);
    const e = await embed({ model: provider().embeddingModel('simulated'), value: 'alpha', maxRetries: 0 });
    expect(e.embedding).toEqual(simulatedVector('simulated', 'alpha', 64));
    const m = await embedMany({ model: provider().embeddingModel('simulated'), values: ['a', 'b'], maxRetries: 0 });
    expect(m.embeddings).toHaveLength(2);

    const ac = new AbortController();
    const s = streamText({ model: provider()('slow'), prompt: 'long', abortSignal: ac.signal, maxRetries: 0, onError: () => undefined });
    let got = 0;
    for await (const t of s.textStream) if (t !== '' && ++got === 2) ac.abort();
    expect(got).toBe(2);
    await slowIdle();

    const err = await generateText({ model: provider()('nope'), prompt: 'x', maxRetries: 0 }).catch((x: unknown) => x);
    expect(APICallError.isInstance(err)).toBe(true);
    expect((err as APICallError).statusCode).toBe(404);
  });
});

describe('LangChain (@langchain/openai)', () => {
  const chat = (model = 'simulated', extra: Record<string, unknown> = {}): ChatOpenAI => new ChatOpenAI({ model, apiKey: 'unused', configuration: { baseURL: `${n0.url}/v1` }, maxRetries: 0, streamUsage: true, ...extra });

  it('invoke and stream with usage', async () => {
    const r = await chat('simulated', { maxTokens: 5 }).invoke('hello');
    expect(textOf(r.content).split(' ')).toHaveLength(5);
    expect(r.usage_metadata?.output_tokens).toBe(5);
    let text = '';
    let usage: number | undefined;
    for await (const c of await chat('simulated', { maxTokens: 5 }).stream('hello')) {
      text += textOf(c.content);
      usage = c.usage_metadata?.output_tokens ?? usage;
    }
    expect(text).toBe(textOf(r.content));
    expect(usage).toBe(5);
  });

  it('tools: bindTools, a tool call, then ToolMessage round trip; streamed tool call chunks', async () => {
    const model = chat().bindTools([{ type: 'function', function: { name: 'get_weather', description: 'weather', parameters: weatherParams } }]);
    const ai = (await model.invoke([new HumanMessage('weather in Oslo?')])) as AIMessage;
    expect(ai.tool_calls).toHaveLength(1);
    const call = ai.tool_calls![0]!;
    expect(call.name).toBe('get_weather');
    expect(typeof (call.args as { city: unknown }).city).toBe('string');
    const answer = await model.invoke([new HumanMessage('weather in Oslo?'), ai, new ToolMessage({ content: 'sunny', tool_call_id: call.id! })]);
    expect(textOf(answer.content).length).toBeGreaterThan(0);
    let names = '';
    for await (const c of await model.stream([new HumanMessage('weather in Oslo?')])) for (const t of c.tool_call_chunks ?? []) names += t.name ?? '';
    expect(names).toBe('get_weather');
  });

  it('structured output, embeddings, abort, errors', async () => {
    const structured = chat().withStructuredOutput<{ name: string; age: number; tags: string[] }>(personSchema, { name: 'person', method: 'jsonSchema' });
    const p = await structured.invoke('a person');
    expect(typeof p.name).toBe('string');
    expect(Number.isInteger(p.age)).toBe(true);
    const emb = new OpenAIEmbeddings({ model: 'simulated', apiKey: 'unused', configuration: { baseURL: `${n0.url}/v1` }, maxRetries: 0 });
    const [a, b] = await emb.embedDocuments(['alpha', 'beta']);
    expect(a).toHaveLength(64);
    expect(a).not.toEqual(b);
    expect(await emb.embedQuery('alpha')).toEqual(a);

    const ac = new AbortController();
    let got = 0;
    await expect(
      (async () => {
        for await (const c of await chat('slow').stream('long', { signal: ac.signal })) if (textOf(c.content) !== '' && ++got === 2) ac.abort();
      })(),
    ).rejects.toThrow();
    expect(got).toBe(2);
    await slowIdle();
    await expect(chat('nope').invoke('x')).rejects.toMatchObject({ status: 404 });
  });
});

describe('ollama client', () => {
  const ollama = (n: TestNode = n0): Ollama => new Ollama({ host: n.url });

  it('chat, stream, generate, list/show/ps/version, served by another node', async () => {
    const r = await ollama().chat({ model: 'simulated', messages: [{ role: 'user', content: 'hello' }], options: { num_predict: 5 } });
    expect(r.done).toBe(true);
    expect(r.message.content.split(' ')).toHaveLength(5);
    expect(r.eval_count).toBe(5);
    expect(servers()).toContain((r as unknown as { fednode: { served_by: string } }).fednode.served_by);
    let text = '';
    let lines = 0;
    for await (const part of await ollama().chat({ model: 'simulated', messages: [{ role: 'user', content: 'hello' }], options: { num_predict: 5 }, stream: true })) {
      text += part.message.content;
      lines++;
      if (part.done) expect(part.done_reason).toBe('length');
    }
    expect(text).toBe(r.message.content);
    expect(lines).toBeGreaterThan(1);
    const g = await ollama().generate({ model: 'simulated', prompt: 'Once', options: { num_predict: 3 } });
    expect(g.response!.split(' ')).toHaveLength(3);
    const raw = await ollama().generate({ model: 'simulated', prompt: 'Once', raw: true, options: { num_predict: 3 } });
    expect(raw.response!.split(' ')).toHaveLength(3);
    expect((await ollama().list()).models.map((m) => m.name)).toEqual(expect.arrayContaining(['simulated', 'slow']));
    expect((await ollama().show({ model: 'simulated' })).capabilities).toContain('tools');
    expect((await ollama().ps()).models.length).toBeGreaterThan(0);
    expect((await ollama().version()).version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('tools with a tool-result round trip; structured output (format schema); embed', async () => {
    const tools = [{ type: 'function', function: { name: 'get_weather', description: 'weather', parameters: weatherParams } }];
    const r = await ollama().chat({ model: 'simulated', messages: [{ role: 'user', content: 'weather in Oslo?' }], tools });
    const call = r.message.tool_calls![0]!;
    expect(call.function.name).toBe('get_weather');
    expect(typeof call.function.arguments['city']).toBe('string');
    const r2 = await ollama().chat({ model: 'simulated', tools, messages: [{ role: 'user', content: 'weather in Oslo?' }, r.message, { role: 'tool', content: 'sunny', tool_name: 'get_weather' }] });
    expect(r2.message.content.length).toBeGreaterThan(0);
    expect(r2.message.tool_calls).toBeUndefined();
    let streamed = '';
    for await (const p of await ollama().chat({ model: 'simulated', messages: [{ role: 'user', content: 'weather in Oslo?' }], tools, stream: true })) for (const t of p.message.tool_calls ?? []) streamed += t.function.name;
    expect(streamed).toBe('get_weather');

    const s = await ollama().chat({ model: 'simulated', messages: [{ role: 'user', content: 'a person' }], format: personSchema });
    const v = JSON.parse(s.message.content) as { name: unknown; age: unknown };
    expect(typeof v.name).toBe('string');
    expect(Number.isInteger(v.age)).toBe(true);
    const e = await ollama().embed({ model: 'simulated', input: ['alpha', 'beta'] });
    expect(e.embeddings[0]).toEqual(simulatedVector('simulated', 'alpha', 64));
    expect(e.embeddings).toHaveLength(2);
  });

  it('abort and errors', async () => {
    const o = ollama();
    const stream = await o.chat({ model: 'slow', messages: [{ role: 'user', content: 'long' }], stream: true });
    let got = 0;
    await expect(
      (async () => {
        for await (const p of stream) if (p.message.content !== '' && ++got === 2) stream.abort();
      })(),
    ).rejects.toThrow();
    expect(got).toBe(2);
    await slowIdle();
    await expect(ollama().chat({ model: 'nope', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status_code: 404 });
    await expect(ollama().chat({ model: 'simulated', messages: [{ role: 'user', content: 'x' }], options: { num_ctx: 4096 } })).rejects.toMatchObject({ status_code: 400, error: expect.stringContaining('num_ctx') as unknown });
  });
});
