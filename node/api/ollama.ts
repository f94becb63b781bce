/**
 * The Ollama-compatible API on every node, routed through the cluster like the OpenAI one:
 *   POST /api/chat, /api/generate (NDJSON streaming by default, as Ollama streams),
 *   POST /api/embed, /api/show; GET /api/tags, /api/ps, /api/version.
 * Ollama `options` map to the internal sampling fields; an option with no mapping is a
 * 400 naming it. Errors are Ollama-shaped: `{ "error": "..." }` with the HTTP status.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { ChatMessage, ChatRequest, CompletionRequest, SamplingParams } from '../backends/types.js';
import type { ModelEntry, RoutedEvent } from '../forward/router.js';
import { httpFailureOf, readJsonBody, sendJson } from './http.js';
import type { ApiContext } from './context.js';
import { MAX_EMBED_INPUTS, MAX_MESSAGES, MAX_TOOLS, toolSchema } from './schema.js';
import { ToolCallAssembler } from './openai-chat.js';

const jsonObject = z.record(z.string(), z.unknown());

/** Ollama options with an internal field; any other option is refused by name. */
const optionsSchema = z.strictObject({
  num_predict: z.number().int().min(-2).max(1_000_000).optional(),
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().min(0).max(1).optional(),
  top_k: z.number().int().min(0).max(100_000).optional(),
  stop: z.array(z.string()).max(16).optional(),
  seed: z.number().int().optional(),
  presence_penalty: z.number().min(-2).max(2).optional(),
  frequency_penalty: z.number().min(-2).max(2).optional(),
});

const format = z.union([z.literal('json'), jsonObject]).optional();

const chatSchema = z.strictObject({
  model: z.string().min(1).max(256),
  messages: z
    .array(
      z.strictObject({
        role: z.enum(['system', 'user', 'assistant', 'tool']),
        content: z.string(),
        tool_calls: z.array(z.strictObject({ function: z.strictObject({ name: z.string().min(1), arguments: jsonObject }) })).max(MAX_TOOLS).optional(),
        tool_name: z.string().optional(),
      }),
    )
    .max(MAX_MESSAGES),
  tools: z.array(toolSchema).max(MAX_TOOLS).optional(),
  format,
  options: optionsSchema.optional(),
  stream: z.boolean().optional(),
});

const generateSchema = z.strictObject({
  model: z.string().min(1).max(256),
  prompt: z.string().optional(),
  system: z.string().optional(),
  raw: z.boolean().optional(),
  format,
  options: optionsSchema.optional(),
  stream: z.boolean().optional(),
});

const embedSchema = z.strictObject({
  model: z.string().min(1).max(256),
  input: z.union([z.string(), z.array(z.string()).min(1).max(MAX_EMBED_INPUTS)]),
  dimensions: z.number().int().positive().max(65_536).optional(),
  truncate: z.literal(true).optional(),
});

function ollamaError(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: message }, headers);
}

function zodMessage(e: z.ZodError): string {
  return e.issues
    .slice(0, 3)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : 'body'}: ${i.code === 'unrecognized_keys' ? `unsupported field(s) ${i.keys.map((k) => `'${k}'`).join(', ')}` : i.message}`)
    .join('; ');
}

async function parse<T>(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, schema: z.ZodType<T>): Promise<T | null> {
  const raw = await readJsonBody(req, res, ctx.maxBodyBytes);
  if (!raw.ok) return null;
  const p = schema.safeParse(raw.json);
  if (!p.success) {
    ollamaError(res, 400, `invalid request: ${zodMessage(p.error)}`);
    return null;
  }
  return p.data;
}

function known(ctx: ApiContext, model: string, res: ServerResponse): boolean {
  if (ctx.router.models().some((m) => m.id === model)) return true;
  ollamaError(res, 404, `model '${model}' not found`);
  return false;
}

function sampling(model: string, o: z.infer<typeof optionsSchema> | undefined): SamplingParams {
  const s: SamplingParams = { model };
  if (o === undefined) return s;
  if (o.num_predict !== undefined && o.num_predict > 0) s.maxTokens = o.num_predict; // -1/-2 = no limit / fill context
  if (o.temperature !== undefined) s.temperature = o.temperature;
  if (o.top_p !== undefined) s.topP = o.top_p;
  if (o.top_k !== undefined) s.topK = o.top_k;
  if (o.stop !== undefined) s.stop = o.stop;
  if (o.seed !== undefined) s.seed = o.seed;
  if (o.presence_penalty !== undefined) s.presencePenalty = o.presence_penalty;
  if (o.frequency_penalty !== undefined) s.frequencyPenalty = o.frequency_penalty;
  return s;
}

function responseFormatOf(f: z.infer<typeof format>): ChatRequest['responseFormat'] {
  if (f === undefined) return undefined;
  return f === 'json' ? { type: 'json_object' } : { type: 'json_schema', json_schema: { name: 'schema', schema: f } };
}

/** Ollama chat request -> internal (tool results are matched to the call of the same name). */
export function ollamaChatToChat(b: z.infer<typeof chatSchema>): ChatRequest {
  const messages: ChatMessage[] = [];
  const open: { id: string; name: string }[] = [];
  let n = 0;
  for (const m of b.messages) {
    const out: ChatMessage = { role: m.role, content: m.content };
    if (m.tool_calls !== undefined) {
      out.toolCalls = m.tool_calls.map((t) => {
        const id = `call_${n++}`;
        open.push({ id, name: t.function.name });
        return { id, type: 'function' as const, function: { name: t.function.name, arguments: JSON.stringify(t.function.arguments) } };
      });
    }
    if (m.role === 'tool') {
      const i = m.tool_name === undefined ? 0 : open.findIndex((c) => c.name === m.tool_name);
      const match = i >= 0 ? open.splice(i, 1)[0] : undefined;
      if (match !== undefined) out.toolCallId = match.id;
      if (m.tool_name !== undefined) out.name = m.tool_name;
    }
    messages.push(out);
  }
  const req: ChatRequest = { ...sampling(b.model, b.options), messages };
  if (b.tools !== undefined) req.tools = b.tools.map((t) => ({ type: 'function', function: { name: t.function.name, ...(t.function.description !== undefined ? { description: t.function.description } : {}), ...(t.function.parameters !== undefined ? { parameters: t.function.parameters } : {}) } }));
  const rf = responseFormatOf(b.format);
  if (rf !== undefined) req.responseFormat = rf;
  return req;
}

const NS_PER_MS = 1_000_000;

/** Streams (NDJSON) or answers (JSON) one chat / generate request in Ollama's shapes. */
async function answer(ctx: ApiContext, res: ServerResponse, kind: 'chat' | 'generate', model: string, stream: boolean, events: AsyncIterable<RoutedEvent>, ac: AbortController): Promise<void> {
  const createdAt = (): string => new Date(ctx.now()).toISOString();
  const tools = new ToolCallAssembler();
  let text = '';
  const line = (o: Record<string, unknown>): void => {
    res.write(`${JSON.stringify(o)}\n`);
  };
  const piece = (content: string, extra: Record<string, unknown> = {}): Record<string, unknown> =>
    kind === 'chat' ? { model, created_at: createdAt(), message: { role: 'assistant', content, ...extra }, done: false } : { model, created_at: createdAt(), response: content, done: false };
  try {
    for await (const ev of events) {
      if (ev.type === 'start') {
        if (stream) res.writeHead(200, { 'content-type': 'application/x-ndjson', 'x-fednode-served-by': ev.servedBy });
      } else if (ev.type === 'delta') {
        if (ev.toolCalls !== undefined) tools.add(ev.toolCalls);
        if (ev.content === '') continue;
        if (stream) line(piece(ev.content));
        else text += ev.content;
      } else {
        // Ollama sends whole tool calls with object arguments
        const calls = tools.list.map((c) => {
          let args: unknown;
          try {
            args = JSON.parse(c.function.arguments === '' ? '{}' : c.function.arguments);
          } catch {
            args = c.function.arguments; // not JSON: passed on as the model wrote it
          }
          return { function: { name: c.function.name, arguments: args } };
        });
        if (stream && calls.length > 0) line(piece('', { tool_calls: calls }));
        const final: Record<string, unknown> = {
          ...(kind === 'chat' ? { model, created_at: createdAt(), message: { role: 'assistant', content: stream ? '' : text, ...(!stream && calls.length > 0 ? { tool_calls: calls } : {}) } } : { model, created_at: createdAt(), response: stream ? '' : text }),
          done: true,
          done_reason: ev.finishReason === 'length' ? 'length' : 'stop',
          total_duration: Math.round(ev.timings.totalMs * NS_PER_MS),
          prompt_eval_count: ev.usage.promptTokens,
          eval_count: ev.usage.completionTokens,
          fednode: { served_by: ev.servedBy },
        };
        if (stream) {
          line(final);
          res.end();
        } else sendJson(res, 200, final, { 'x-fednode-served-by': ev.servedBy });
        return;
      }
    }
  } catch (err) {
    if (ac.signal.aborted && res.destroyed) return;
    const f = httpFailureOf(err);
    if (res.headersSent) {
      line({ error: f.message });
      res.end();
      return;
    }
    if (f.status >= 500 || f.status === 429) ctx.warn(`ollama ${kind} request failed`, { status: f.status, code: f.code, model });
    ollamaError(res, f.status, f.message, f.headers);
  }
}

function details(): Record<string, unknown> {
  // fednode does not know a remote model's file; these fields stay empty rather than invented
  return { parent_model: '', format: '', family: '', families: null, parameter_size: '', quantization_level: '' };
}

function tagOf(m: ModelEntry): Record<string, unknown> {
  return { name: m.id, model: m.id, modified_at: new Date(0).toISOString(), size: 0, digest: '', details: details(), fednode: { served_by: m.servedBy, simulated: m.simulated, ...(m.aliasOf !== undefined ? { alias_of: m.aliasOf } : {}) } };
}

type Handler = (ctx: ApiContext, req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export function ollamaRoutes(version: string): [string, Handler][] {
  return [
    ['GET /api/version', (_c, _q, res) => sendJson(res, 200, { version })],
    ['GET /api/tags', (c, _q, res) => sendJson(res, 200, { models: c.router.models().map(tagOf) })],
    // every model a live member serves is ready there (the cluster has no unloaded state to report)
    ['GET /api/ps', (c, _q, res) => sendJson(res, 200, { models: c.router.models().map((m) => ({ ...tagOf(m), expires_at: new Date(0).toISOString(), size_vram: 0 })) })],
    [
      'POST /api/show',
      async (c, req, res) => {
        const b = await parse(c, req, res, z.strictObject({ model: z.string().min(1).max(256).optional(), name: z.string().min(1).max(256).optional(), verbose: z.boolean().optional() }));
        if (b === null) return;
        const id = b.model ?? b.name;
        if (id === undefined) return ollamaError(res, 400, 'invalid request: model is required');
        const m = c.router.models().find((x) => x.id === id);
        if (m === undefined) return ollamaError(res, 404, `model '${id}' not found`);
        sendJson(res, 200, { modelfile: '', parameters: '', template: '', details: details(), model_info: {}, capabilities: ['completion', 'tools', 'embedding'], modified_at: new Date(0).toISOString(), fednode: tagOf(m)['fednode'] });
      },
    ],
    [
      'POST /api/chat',
      async (c, req, res) => {
        const b = await parse(c, req, res, chatSchema);
        if (b === null || !known(c, b.model, res)) return;
        if (b.messages.length === 0) return sendJson(res, 200, { model: b.model, created_at: new Date(c.now()).toISOString(), message: { role: 'assistant', content: '' }, done: true, done_reason: 'load' });
        const ac = c.abortOnClose(res);
        await answer(c, res, 'chat', b.model, b.stream !== false, c.router.chat(ollamaChatToChat(b), { requestId: `ollama-${randomUUID()}`, signal: ac.signal }), ac);
      },
    ],
    [
      'POST /api/generate',
      async (c, req, res) => {
        const b = await parse(c, req, res, generateSchema);
        if (b === null || !known(c, b.model, res)) return;
        // an empty prompt asks Ollama to load the model: every served model is ready
        if (b.prompt === undefined || b.prompt === '') return sendJson(res, 200, { model: b.model, created_at: new Date(c.now()).toISOString(), response: '', done: true, done_reason: 'load' });
        const ac = c.abortOnClose(res);
        const call = { requestId: `ollama-${randomUUID()}`, signal: ac.signal };
        let events: AsyncIterable<RoutedEvent>;
        const rf = responseFormatOf(b.format);
        if (b.raw === true) {
          if (b.system !== undefined) return ollamaError(res, 400, 'invalid request: system cannot be combined with raw');
          if (rf !== undefined) return ollamaError(res, 400, 'invalid request: format is not supported with raw (a raw completion has no response format)');
          const creq: CompletionRequest = { ...sampling(b.model, b.options), prompt: b.prompt };
          events = c.router.complete(creq, call);
        } else {
          const messages: ChatMessage[] = [...(b.system !== undefined ? [{ role: 'system' as const, content: b.system }] : []), { role: 'user', content: b.prompt }];
          events = c.router.chat({ ...sampling(b.model, b.options), messages, ...(rf !== undefined ? { responseFormat: rf } : {}) }, call);
        }
        await answer(c, res, 'generate', b.model, b.stream !== false, events, ac);
      },
    ],
    [
      'POST /api/embed',
      async (c, req, res) => {
        const b = await parse(c, req, res, embedSchema);
        if (b === null || !known(c, b.model, res)) return;
        const ac = c.abortOnClose(res);
        try {
          for await (const ev of c.router.embed({ model: b.model, input: typeof b.input === 'string' ? [b.input] : b.input, ...(b.dimensions !== undefined ? { dimensions: b.dimensions } : {}) }, { requestId: `ollama-${randomUUID()}`, signal: ac.signal })) {
            if (ev.type !== 'embedding') continue;
            sendJson(res, 200, { model: b.model, embeddings: ev.vectors, prompt_eval_count: ev.promptTokens, fednode: { served_by: ev.servedBy } }, { 'x-fednode-served-by': ev.servedBy });
            return;
          }
        } catch (err) {
          if (ac.signal.aborted && res.destroyed) return;
          const f = httpFailureOf(err);
          ollamaError(res, f.status, f.message, f.headers);
        }
      },
    ],
  ];
}
