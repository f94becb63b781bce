/**
 * POST /v1/responses (OpenAI Responses API), translated to a chat request since no backend
 * kind has a Responses API of its own: text and tool calls in (input items: messages,
 * function_call, function_call_output), text and tool calls out; streaming events in the
 * reference's order: response.created, response.in_progress, response.output_item.added,
 * response.content_part.added, response.output_text.delta..., response.output_text.done,
 * response.content_part.done, response.function_call_arguments.delta/.done,
 * response.output_item.done, response.completed (each with sequence_number). Nothing is
 * stored: store: true and previous_response_id are refused.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { ChatMessage, ChatRequest, ToolCall } from '../backends/types.js';
import { MAX_MESSAGES, MAX_TOOLS } from './schema.js';
import { httpFailureOf, sendError, sendJson, redactUrls } from './http.js';
import type { ApiContext } from './context.js';
import { readRequest } from './context.js';

const jsonObject = z.record(z.string(), z.unknown());
const inputText = z.strictObject({ type: z.enum(['input_text', 'output_text']), text: z.string(), annotations: z.array(z.unknown()).max(0).optional(), logprobs: z.array(z.unknown()).optional() });
const messageItem = z.strictObject({
  type: z.literal('message').optional(),
  id: z.string().optional(),
  status: z.string().optional(),
  role: z.enum(['user', 'system', 'developer', 'assistant']),
  content: z.union([z.string(), z.array(inputText).max(256)]),
});
const functionCallItem = z.strictObject({ type: z.literal('function_call'), id: z.string().optional(), status: z.string().optional(), call_id: z.string().min(1).max(256), name: z.string().min(1).max(256), arguments: z.string() });
const functionOutputItem = z.strictObject({ type: z.literal('function_call_output'), id: z.string().optional(), status: z.string().optional(), call_id: z.string().min(1).max(256), output: z.string() });

export const responsesRequestSchema = z.strictObject({
  model: z.string().min(1).max(256),
  input: z.union([z.string(), z.array(z.union([messageItem, functionCallItem, functionOutputItem])).min(1).max(MAX_MESSAGES)]),
  instructions: z.string().nullish(),
  tools: z.array(z.strictObject({ type: z.literal('function'), name: z.string().min(1).max(256), description: z.string().nullish(), parameters: jsonObject.nullish(), strict: z.boolean().nullish() })).max(MAX_TOOLS).nullish(),
  tool_choice: z.union([z.enum(['none', 'auto', 'required']), z.strictObject({ type: z.literal('function'), name: z.string().min(1) })]).nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  max_output_tokens: z.number().int().positive().max(1_000_000).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  stream: z.boolean().nullish(),
  text: z
    .strictObject({
      format: z
        .union([
          z.strictObject({ type: z.literal('text') }),
          z.strictObject({ type: z.literal('json_object') }),
          z.strictObject({ type: z.literal('json_schema'), name: z.string().min(1).max(256), schema: jsonObject, description: z.string().nullish(), strict: z.boolean().nullish() }),
        ])
        .optional(),
    })
    .nullish(),
  store: z.literal(false).nullish(),
  user: z.string().max(256).nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
});

type ResponsesRequest = z.infer<typeof responsesRequestSchema>;

function textOf(c: string | { text: string }[]): string {
  return typeof c === 'string' ? c : c.map((p) => p.text).join('');
}

/** Responses request -> chat request. */
export function responsesToChat(r: ResponsesRequest): ChatRequest {
  const messages: ChatMessage[] = [];
  if (r.instructions != null && r.instructions !== '') messages.push({ role: 'system', content: r.instructions });
  if (typeof r.input === 'string') messages.push({ role: 'user', content: r.input });
  else {
    for (const item of r.input) {
      if (item.type === 'function_call') {
        const call: ToolCall = { id: item.call_id, type: 'function', function: { name: item.name, arguments: item.arguments } };
        const last = messages[messages.length - 1];
        if (last?.role === 'assistant') (last.toolCalls ??= []).push(call);
        else messages.push({ role: 'assistant', content: '', toolCalls: [call] });
      } else if (item.type === 'function_call_output') {
        messages.push({ role: 'tool', content: item.output, toolCallId: item.call_id });
      } else {
        messages.push({ role: item.role === 'developer' ? 'system' : item.role, content: textOf(item.content) });
      }
    }
  }
  const req: ChatRequest = { model: r.model, messages };
  if (r.max_output_tokens != null) req.maxTokens = r.max_output_tokens;
  if (r.temperature != null) req.temperature = r.temperature;
  if (r.top_p != null) req.topP = r.top_p;
  if (r.user != null) req.user = r.user;
  if (r.tools != null) {
    req.tools = r.tools.map((t) => ({
      type: 'function',
      function: { name: t.name, ...(t.description != null ? { description: t.description } : {}), ...(t.parameters != null ? { parameters: t.parameters } : {}), ...(t.strict != null ? { strict: t.strict } : {}) },
    }));
  }
  if (r.tool_choice != null) req.toolChoice = typeof r.tool_choice === 'string' ? r.tool_choice : { type: 'function', function: { name: r.tool_choice.name } };
  if (r.parallel_tool_calls != null) req.parallelToolCalls = r.parallel_tool_calls;
  const f = r.text?.format;
  if (f !== undefined) {
    req.responseFormat =
      f.type === 'json_schema' ? { type: 'json_schema', json_schema: { name: f.name, schema: f.schema, ...(f.description != null ? { description: f.description } : {}), ...(f.strict != null ? { strict: f.strict } : {}) } } : f;
  }
  return req;
}

interface OutItem {
  kind: 'message' | 'function_call';
  id: string;
  index: number;
  text: string;
  callId: string;
  name: string;
  args: string;
}

/** The Responses API object in `status` (the request's echo fields, then `extra`). */
function responseObject(body: ResponsesRequest, id: string, createdAt: number, status: string, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    id,
    object: 'response',
    created_at: createdAt,
    status,
    error: null,
    incomplete_details: null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    model: body.model,
    output: [],
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: null,
    store: false,
    temperature: body.temperature ?? null,
    top_p: body.top_p ?? null,
    tool_choice: body.tool_choice ?? 'auto',
    tools: (body.tools ?? []).map((t) => ({ type: 'function', name: t.name, description: t.description ?? null, parameters: t.parameters ?? null, strict: t.strict ?? null })),
    text: { format: body.text?.format ?? { type: 'text' } },
    metadata: body.metadata ?? {},
    usage: null,
    ...extra,
  };
}

/** One output item as the API shows it (content and arguments only once completed). */
function itemJson(it: OutItem, status: string): Record<string, unknown> {
  return it.kind === 'message'
    ? { type: 'message', id: it.id, status, role: 'assistant', content: status === 'in_progress' ? [] : [{ type: 'output_text', text: it.text, annotations: [], logprobs: [] }] }
    : { type: 'function_call', id: it.id, call_id: it.callId, name: it.name, arguments: status === 'in_progress' ? '' : it.args, status };
}

export async function handleResponses(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readRequest(ctx, req, res, responsesRequestSchema);
  if (body === null) return;
  const chatReq = responsesToChat(body);
  const id = `resp_${randomUUID().replace(/-/g, '')}`;
  const createdAt = Math.floor(ctx.now() / 1000);
  const stream = body.stream === true;
  const ac = ctx.abortOnClose(res);
  let seq = 0;
  const items: OutItem[] = [];
  const byToolIndex = new Map<number, OutItem>();
  let message: OutItem | null = null;
  const base = (status: string, extra: Record<string, unknown> = {}): Record<string, unknown> => responseObject(body, id, createdAt, status, extra);
  const emit = (type: string, data: Record<string, unknown>): void => {
    if (stream) res.write(`event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`);
  };
  const openMessage = (): OutItem => {
    if (message !== null) return message;
    message = { kind: 'message', id: `msg_${randomUUID().replace(/-/g, '')}`, index: items.length, text: '', callId: '', name: '', args: '' };
    items.push(message);
    emit('response.output_item.added', { output_index: message.index, item: itemJson(message, 'in_progress') });
    emit('response.content_part.added', { item_id: message.id, output_index: message.index, content_index: 0, part: { type: 'output_text', text: '', annotations: [], logprobs: [] } });
    return message;
  };
  const closeItem = (it: OutItem): void => {
    if (it.kind === 'message') {
      emit('response.output_text.done', { item_id: it.id, output_index: it.index, content_index: 0, text: it.text, logprobs: [] });
      emit('response.content_part.done', { item_id: it.id, output_index: it.index, content_index: 0, part: { type: 'output_text', text: it.text, annotations: [], logprobs: [] } });
    } else emit('response.function_call_arguments.done', { item_id: it.id, output_index: it.index, name: it.name, arguments: it.args });
    emit('response.output_item.done', { output_index: it.index, item: itemJson(it, 'completed') });
  };
  try {
    for await (const ev of ctx.router.chat(chatReq, { requestId: id, signal: ac.signal })) {
      if (ev.type === 'start') {
        if (stream) {
          res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-fednode-served-by': ev.servedBy, 'x-request-id': id });
          emit('response.created', { response: base('in_progress') });
          emit('response.in_progress', { response: base('in_progress') });
        }
      } else if (ev.type === 'delta') {
        if (ev.content !== '') {
          const m = openMessage();
          m.text += ev.content;
          emit('response.output_text.delta', { item_id: m.id, output_index: m.index, content_index: 0, delta: ev.content, logprobs: [] });
        }
        for (const t of ev.toolCalls ?? []) {
          let it = byToolIndex.get(t.index);
          if (it === undefined) {
            it = { kind: 'function_call', id: `fc_${randomUUID().replace(/-/g, '')}`, index: items.length, text: '', callId: t.id ?? `call_${t.index}`, name: t.function?.name ?? '', args: '' };
            items.push(it);
            byToolIndex.set(t.index, it);
            emit('response.output_item.added', { output_index: it.index, item: itemJson(it, 'in_progress') });
          } else if (t.function?.name !== undefined) it.name += t.function.name;
          const a = t.function?.arguments ?? '';
          if (a !== '') {
            it.args += a;
            emit('response.function_call_arguments.delta', { item_id: it.id, output_index: it.index, delta: a });
          }
        }
      } else {
        for (const it of items) closeItem(it);
        const incomplete = ev.finishReason === 'length';
        const usage = { input_tokens: ev.usage.promptTokens, input_tokens_details: { cached_tokens: 0 }, output_tokens: ev.usage.completionTokens, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: ev.usage.promptTokens + ev.usage.completionTokens };
        const final = base(incomplete ? 'incomplete' : 'completed', {
          output: items.map((it) => itemJson(it, 'completed')),
          usage,
          incomplete_details: incomplete ? { reason: 'max_output_tokens' } : null,
          fednode: { served_by: ev.servedBy },
        });
        if (stream) {
          emit(incomplete ? 'response.incomplete' : 'response.completed', { response: final });
          res.end();
        } else sendJson(res, 200, final, { 'x-fednode-served-by': ev.servedBy, 'x-request-id': id });
        return;
      }
    }
  } catch (err) {
    if (ac.signal.aborted && res.destroyed) return;
    const f = httpFailureOf(err);
    if (res.headersSent) {
      emit('error', { code: f.code, message: redactUrls(f.message), param: f.param });
      emit('response.failed', { response: base('failed', { error: { code: f.code, message: redactUrls(f.message) } }) });
      res.end();
      return;
    }
    if (f.status >= 500 || f.status === 429) ctx.warn('responses request failed', { status: f.status, code: f.code, model: body.model });
    sendError(res, f.status, f.type, f.message, f.param, f.code, f.headers);
  }
}
