// Pure parts of the inference surface: what each backend kind honours (params.ts), the
// simulated backend's stop / max_tokens / tool call / JSON / vectors, the translations of
// the Responses and Ollama requests to chat, and the advertised API URL.
import { describe, it, expect } from 'vitest';
import { assertSupported, SimulatedBackend, simulatedVector } from '../../../node/backends/index.js';
import type { BackendError, ChatChunk, ChatRequest } from '../../../node/backends/index.js';
import type { NetworkInterfaceInfo } from 'node:os';
import { cutAtStop, schemaExample } from '../../../node/backends/simulated-output.js';
import { responsesToChat, responsesRequestSchema } from '../../../node/api/responses.js';
import { ollamaChatToChat } from '../../../node/api/ollama.js';
import { toChatRequest } from '../../../node/api/openai-chat.js';
import { chatCompletionRequestSchema } from '../../../node/api/schema.js';
import { advertisedApiUrl } from '../../../node/api/advertised.js';

const base: ChatRequest = { model: 'm', messages: [{ role: 'user', content: 'x' }] };
const refusal = (f: () => void): BackendError => {
  try {
    f();
  } catch (e) {
    return e as BackendError;
  }
  throw new Error('expected a refusal');
};

describe('params.ts: a field a backend cannot honour is a refusal naming it', () => {
  it('openai takes every field; ollama refuses logit_bias, logprobs and forced tool choice; simulated refuses penalties', () => {
    const all: ChatRequest = { ...base, logitBias: { '1': 2 }, logprobs: true, topLogprobs: 2, presencePenalty: 1, toolChoice: 'required', parallelToolCalls: false };
    expect(() => assertSupported('openai', all)).not.toThrow();
    expect(refusal(() => assertSupported('ollama', { ...base, logitBias: { '1': 2 } })).data).toMatchObject({ param: 'logit_bias', backendKind: 'ollama' });
    expect(refusal(() => assertSupported('ollama', { ...base, logprobs: true })).data['param']).toBe('logprobs');
    expect(refusal(() => assertSupported('ollama', { ...base, toolChoice: 'required' })).data['param']).toBe('tool_choice');
    expect(refusal(() => assertSupported('ollama', { ...base, parallelToolCalls: false })).data['param']).toBe('parallel_tool_calls');
    expect(() => assertSupported('ollama', { ...base, toolChoice: 'auto', presencePenalty: 1, topK: 40 })).not.toThrow();
    expect(refusal(() => assertSupported('simulated', { ...base, frequencyPenalty: 1 })).code).toBe('ERR_BACKEND_UNSUPPORTED');
    expect(refusal(() => assertSupported('simulated', { ...base, ...({ mystery: 1 } as object) })).message).toContain("'mystery'");
  });
});

async function collect(it: AsyncIterable<ChatChunk>): Promise<ChatChunk[]> {
  const out: ChatChunk[] = [];
  for await (const c of it) out.push(c);
  return out;
}

describe('simulated backend', () => {
  const sim = new SimulatedBackend({ tokensPerSecond: 0, models: ['m'] });
  it('stop cuts before the stop string (finish stop), max_tokens ends with length', async () => {
    const full = (await collect(sim.chat({ ...base, maxTokens: 10 }))).flatMap((c) => (c.type === 'delta' ? [c.content] : [])).join('');
    const stop = full.slice(8, 12);
    const cut = await collect(sim.chat({ ...base, maxTokens: 10, stop: [stop] }));
    expect(cut.flatMap((c) => (c.type === 'delta' ? [c.content] : [])).join('')).toBe(full.slice(0, full.indexOf(stop)));
    expect(cut[cut.length - 1]).toMatchObject({ type: 'done', finishReason: 'stop' });
    expect((await collect(sim.chat({ ...base, maxTokens: 3 }))).at(-1)).toMatchObject({ finishReason: 'length', usage: { completionTokens: 3 } });
    expect(cutAtStop(['ab', 'cd', 'ef'], ['de'])).toEqual({ pieces: ['ab', 'c'], stopped: true });
    expect(cutAtStop(['ab'], ['zz'])).toEqual({ pieces: ['ab'], stopped: false });
  });

  it('offers a deterministic tool call (id, name, JSON args in fragments) and answers text after the tool result', async () => {
    const tools = [{ type: 'function' as const, function: { name: 'f', parameters: { type: 'object', properties: { q: { type: 'string' }, n: { type: 'integer', minimum: 3 } } } } }];
    const a = await collect(sim.chat({ ...base, tools }));
    const b = await collect(sim.chat({ ...base, tools }));
    expect(a).toEqual(b.map((c) => (c.type === 'done' ? { ...c, timings: (a.at(-1) as Extract<ChatChunk, { type: 'done' }>).timings } : c)));
    const first = a[0] as Extract<ChatChunk, { type: 'delta' }>;
    expect(first.toolCalls![0]).toMatchObject({ index: 0, type: 'function', function: { name: 'f', arguments: '' } });
    const args = a.flatMap((c) => (c.type === 'delta' ? (c.toolCalls ?? []).map((t) => t.function?.arguments ?? '') : [])).join('');
    expect(JSON.parse(args)).toMatchObject({ n: 3 });
    expect(a.at(-1)).toMatchObject({ finishReason: 'tool_calls' });
    const after = await collect(sim.chat({ ...base, tools, messages: [...base.messages, { role: 'assistant', content: '', toolCalls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: args } }] }, { role: 'tool', content: 'ok', toolCallId: 'c' }] }));
    expect(after.at(-1)).toMatchObject({ finishReason: 'stop' });
    expect((await collect(sim.chat({ ...base, tools, toolChoice: 'none' }))).some((c) => c.type === 'delta' && c.toolCalls !== undefined)).toBe(false);
  });

  it('JSON that fits a schema; deterministic unit vectors', async () => {
    expect(schemaExample({ type: 'object', properties: { a: { enum: ['x', 'y'] }, b: { type: 'array', items: { type: 'boolean' }, minItems: 2 }, c: { anyOf: [{ type: 'null' }] } } }, ['w'])).toEqual({ a: 'x', b: [true, true], c: null });
    const v = simulatedVector('m', 'hi', 16);
    expect(v).toEqual(simulatedVector('m', 'hi', 16));
    expect(Math.hypot(...v)).toBeCloseTo(1, 10);
    expect((await sim.embed({ model: 'm', input: ['hi', 'ho'], dimensions: 16 })).vectors[0]).toEqual(v);
  });
});

describe('request translations', () => {
  it('OpenAI chat: every field mapped; developer -> system; neutral values dropped; tool history kept', () => {
    const r = toChatRequest(
      chatCompletionRequestSchema.parse({
        model: 'm',
        messages: [{ role: 'developer', content: 'be brief' }, { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }] }, { role: 'tool', tool_call_id: 'c1', content: 'ok' }],
        max_completion_tokens: 7,
        temperature: 0.5,
        top_p: 0.9,
        stop: 'END',
        seed: 3,
        presence_penalty: 0,
        frequency_penalty: 0.4,
        logit_bias: {},
        logprobs: false,
        user: 'u',
        tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
        tool_choice: 'auto',
        parallel_tool_calls: true,
        response_format: { type: 'json_object' },
      }),
    );
    expect(r).toEqual({
      model: 'm',
      messages: [{ role: 'system', content: 'be brief' }, { role: 'assistant', content: '', toolCalls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }] }, { role: 'tool', content: 'ok', toolCallId: 'c1' }],
      maxTokens: 7,
      temperature: 0.5,
      topP: 0.9,
      stop: ['END'],
      seed: 3,
      frequencyPenalty: 0.4,
      user: 'u',
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
      toolChoice: 'auto',
      parallelToolCalls: true,
      responseFormat: { type: 'json_object' },
    });
  });

  it('Responses: instructions, function_call + function_call_output items, text.format json_schema', () => {
    const r = responsesToChat(
      responsesRequestSchema.parse({
        model: 'm',
        instructions: 'sys',
        input: [{ role: 'user', content: [{ type: 'input_text', text: 'hi' }] }, { type: 'function_call', call_id: 'c', name: 'f', arguments: '{"a":1}' }, { type: 'function_call_output', call_id: 'c', output: 'done' }],
        tools: [{ type: 'function', name: 'f', parameters: { type: 'object' } }],
        text: { format: { type: 'json_schema', name: 's', schema: { type: 'object' } } },
        max_output_tokens: 9,
      }),
    );
    expect(r.messages).toEqual([{ role: 'system', content: 'sys' }, { role: 'user', content: 'hi' }, { role: 'assistant', content: '', toolCalls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] }, { role: 'tool', content: 'done', toolCallId: 'c' }]);
    expect(r.responseFormat).toEqual({ type: 'json_schema', json_schema: { name: 's', schema: { type: 'object' } } });
    expect(r.maxTokens).toBe(9);
    expect(() => responsesRequestSchema.parse({ model: 'm', input: 'x', previous_response_id: 'resp_1' })).toThrow(/previous_response_id/);
  });

  it('Ollama chat: options, object tool arguments, tool results matched to their call by name', () => {
    const r = ollamaChatToChat({
      model: 'm',
      messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: '', tool_calls: [{ function: { name: 'f', arguments: { a: 1 } } }] }, { role: 'tool', content: 'r', tool_name: 'f' }],
      options: { num_predict: 5, top_k: 3, stop: ['x'] },
      format: 'json',
    });
    expect(r.messages[1]!.toolCalls![0]).toEqual({ id: 'call_0', type: 'function', function: { name: 'f', arguments: '{"a":1}' } });
    expect(r.messages[2]).toMatchObject({ role: 'tool', toolCallId: 'call_0', name: 'f' });
    expect(r).toMatchObject({ maxTokens: 5, topK: 3, stop: ['x'], responseFormat: { type: 'json_object' } });
  });
});

describe('advertised API URL', () => {
  const ifaces = (): NodeJS.Dict<NetworkInterfaceInfo[]> => ({
    lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true, netmask: '255.0.0.0', mac: '', cidr: null }],
    eth0: [{ address: '192.168.1.20', family: 'IPv4', internal: false, netmask: '255.255.255.0', mac: '', cidr: null }],
  });
  it('never 0.0.0.0: a wildcard bind advertises the LAN address (loopback when there is none)', () => {
    expect(advertisedApiUrl(7411, '0.0.0.0', ifaces)).toBe('http://192.168.1.20:7411');
    expect(advertisedApiUrl(7411, '::', ifaces)).toBe('http://192.168.1.20:7411');
    expect(advertisedApiUrl(7411, '0.0.0.0', () => ({}))).toBe('http://127.0.0.1:7411');
    expect(advertisedApiUrl(7411, '127.0.0.1', ifaces)).toBe('http://127.0.0.1:7411');
    expect(advertisedApiUrl(7411, '::1', ifaces)).toBe('http://[::1]:7411');
  });
});
