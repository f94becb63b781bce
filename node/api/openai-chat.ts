/**
 * POST /v1/chat/completions and POST /v1/completions: the OpenAI request mapped to the
 * internal one field by field, routed, and the result written in OpenAI's wire format
 * (JSON, or SSE chunks ending with `data: [DONE]`). Tool-call fragments stream as
 * `delta.tool_calls`; with `stream_options.include_usage` every chunk carries
 * `usage: null` and a final chunk with `choices: []` carries the usage.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { ChatMessage, ChatRequest, CompletionRequest, SamplingParams, TokenLogprob, ToolCall, ToolCallDelta } from '../backends/types.js';
import { InferError } from '../forward/errors.js';
import type { RoutedEvent } from '../forward/router.js';
import { chatCompletionRequestSchema, completionRequestSchema } from './schema.js';
import type { ChatCompletionRequest, CompletionApiRequest } from './schema.js';
import { httpFailureOf, sendError, redactUrls } from './http.js';
import type { ApiContext } from './context.js';
import { readRequest } from './context.js';

function contentText(c: ChatCompletionRequest['messages'][number]['content']): string {
  if (c === null || c === undefined) return '';
  if (typeof c === 'string') return c;
  return c.map((p) => p.text).join('');
}

function set<K extends keyof SamplingParams>(o: SamplingParams, k: K, v: SamplingParams[K] | null | undefined): void {
  if (v !== null && v !== undefined) o[k] = v;
}

function samplingOf(r: CompletionApiRequest | ChatCompletionRequest, max: number | null | undefined): SamplingParams {
  const s: SamplingParams = { model: r.model };
  set(s, 'maxTokens', max);
  set(s, 'temperature', r.temperature);
  set(s, 'topP', r.top_p);
  set(s, 'topK', r.top_k);
  if (r.stop !== null && r.stop !== undefined) s.stop = typeof r.stop === 'string' ? [r.stop] : r.stop;
  set(s, 'seed', r.seed);
  // Neutral values are no-ops every backend honours (SDKs send 0 penalties and {} bias by default).
  if (r.presence_penalty !== 0) set(s, 'presencePenalty', r.presence_penalty);
  if (r.frequency_penalty !== 0) set(s, 'frequencyPenalty', r.frequency_penalty);
  if (r.logit_bias != null && Object.keys(r.logit_bias).length > 0) s.logitBias = r.logit_bias;
  set(s, 'user', r.user);
  return s;
}

export function toChatRequest(r: ChatCompletionRequest): ChatRequest {
  const messages: ChatMessage[] = r.messages.map((m) => {
    const out: ChatMessage = { role: m.role === 'developer' ? 'system' : m.role, content: contentText(m.content) };
    if (m.tool_calls !== undefined) out.toolCalls = m.tool_calls;
    if (m.tool_call_id !== undefined) out.toolCallId = m.tool_call_id;
    if (m.name !== undefined) out.name = m.name;
    return out;
  });
  const req: ChatRequest = { ...samplingOf(r, r.max_completion_tokens ?? r.max_tokens), messages };
  // logprobs: false asks for nothing; top_logprobs only means something with logprobs: true
  if (r.logprobs === true) {
    req.logprobs = true;
    if (r.top_logprobs !== null && r.top_logprobs !== undefined) req.topLogprobs = r.top_logprobs;
  } else if (r.top_logprobs !== null && r.top_logprobs !== undefined && r.top_logprobs > 0) {
    throw new InferError('ERR_UNSUPPORTED_PARAM', 'top_logprobs needs logprobs: true', { param: 'top_logprobs' });
  }
  if (r.tools !== null && r.tools !== undefined) req.tools = r.tools.map((t) => ({ type: 'function', function: { ...t.function, strict: t.function.strict ?? undefined } }));
  if (r.tool_choice !== null && r.tool_choice !== undefined) req.toolChoice = r.tool_choice;
  if (r.parallel_tool_calls !== null && r.parallel_tool_calls !== undefined) req.parallelToolCalls = r.parallel_tool_calls;
  if (r.response_format !== null && r.response_format !== undefined) {
    const f = r.response_format;
    req.responseFormat = f.type === 'json_schema' ? { type: 'json_schema', json_schema: { ...f.json_schema, strict: f.json_schema.strict ?? undefined } } : f;
  }
  return JSON.parse(JSON.stringify(req)) as ChatRequest; // drops the undefined fields left above
}

export function toCompletionRequest(r: CompletionApiRequest): CompletionRequest {
  const req: CompletionRequest = { ...samplingOf(r, r.max_tokens), prompt: typeof r.prompt === 'string' ? r.prompt : r.prompt[0]! };
  if (r.logprobs !== null && r.logprobs !== undefined) {
    req.logprobs = true;
    req.topLogprobs = r.logprobs;
  }
  return req;
}

/** Assembles streamed tool-call fragments into complete calls (by index). */
export class ToolCallAssembler {
  private readonly calls: ToolCall[] = [];
  add(deltas: readonly ToolCallDelta[]): void {
    for (const d of deltas) {
      const c = (this.calls[d.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } });
      if (d.id !== undefined) c.id = d.id;
      if (d.function?.name !== undefined) c.function.name += d.function.name;
      if (d.function?.arguments !== undefined) c.function.arguments += d.function.arguments;
    }
  }
  get list(): ToolCall[] {
    return this.calls.filter((c) => c !== undefined);
  }
}

type Kind = 'chat' | 'completion';

/** Parses, routes and answers one chat or completions request. */
export async function handleGeneration(ctx: ApiContext, kind: Kind, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = kind === 'chat' ? await readRequest(ctx, req, res, chatCompletionRequestSchema) : await readRequest(ctx, req, res, completionRequestSchema);
  if (body === null) return;
  const stream = body.stream === true;
  const includeUsage = body.stream_options?.include_usage === true;
  const id = kind === 'chat' ? `chatcmpl-${randomUUID().replace(/-/g, '')}` : `cmpl-${randomUUID().replace(/-/g, '')}`;
  const object = kind === 'chat' ? 'chat.completion' : 'text_completion';
  const created = Math.floor(ctx.now() / 1000);
  const wantLogprobs = kind === 'chat' ? (body as ChatCompletionRequest).logprobs === true : typeof (body as CompletionApiRequest).logprobs === 'number';
  const ac = ctx.abortOnClose(res);
  const events = (): AsyncIterable<RoutedEvent> =>
    kind === 'chat' ? ctx.router.chat(toChatRequest(body as ChatCompletionRequest), { requestId: id, signal: ac.signal }) : ctx.router.complete(toCompletionRequest(body as CompletionApiRequest), { requestId: id, signal: ac.signal });
  const usageNull = includeUsage ? { usage: null } : {};
  const chunk = (choice: Record<string, unknown>, extra: Record<string, unknown> = {}): string =>
    `data: ${JSON.stringify({ id, object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion', created, model: body.model, system_fingerprint: null, choices: [{ index: 0, ...choice }], ...usageNull, ...extra })}\n\n`;
  let text = '';
  const tools = new ToolCallAssembler();
  const logprobs: TokenLogprob[] = [];
  let attempts = 0;
  let complete = false;
  try {
    for await (const ev of events()) {
      if (ev.type === 'start') {
        attempts = ev.attempts;
        if (stream) {
          res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-fednode-served-by': ev.servedBy, 'x-request-id': id });
          if (kind === 'chat') res.write(chunk({ delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }));
        }
      } else if (ev.type === 'delta') {
        if (ev.logprobs !== undefined) logprobs.push(...ev.logprobs);
        if (stream) {
          const lp = ev.logprobs === undefined ? null : kind === 'chat' ? { content: ev.logprobs, refusal: null } : legacyLogprobs(ev.logprobs);
          if (kind === 'chat') {
            const delta: Record<string, unknown> = {};
            if (ev.content !== '' || ev.toolCalls === undefined) delta['content'] = ev.content;
            if (ev.toolCalls !== undefined) delta['tool_calls'] = ev.toolCalls.map((t) => (t.function === undefined ? t : { ...t, function: t.function }));
            res.write(chunk({ delta, logprobs: lp, finish_reason: null }));
          } else res.write(chunk({ text: ev.content, logprobs: lp, finish_reason: null }));
        } else {
          text += ev.content;
          if (ev.toolCalls !== undefined) tools.add(ev.toolCalls);
        }
      } else {
        const usage = { prompt_tokens: ev.usage.promptTokens, completion_tokens: ev.usage.completionTokens, total_tokens: ev.usage.promptTokens + ev.usage.completionTokens };
        const fednode = { served_by: ev.servedBy, attempts, timings: { first_token_ms: ev.timings.firstTokenMs, total_ms: ev.timings.totalMs } };
        complete = true;
        if (stream) {
          res.write(chunk(kind === 'chat' ? { delta: {}, logprobs: null, finish_reason: ev.finishReason } : { text: '', logprobs: null, finish_reason: ev.finishReason }, { fednode }));
          if (includeUsage) res.write(`data: ${JSON.stringify({ id, object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion', created, model: body.model, system_fingerprint: null, choices: [], usage })}\n\n`);
          res.end('data: [DONE]\n\n');
        } else {
          const lp = wantLogprobs ? (kind === 'chat' ? { content: logprobs, refusal: null } : legacyLogprobs(logprobs)) : null;
          const calls = tools.list;
          const choice =
            kind === 'chat'
              ? { index: 0, message: { role: 'assistant', content: calls.length > 0 && text === '' ? null : text, refusal: null, ...(calls.length > 0 ? { tool_calls: calls } : {}) }, logprobs: lp, finish_reason: ev.finishReason }
              : { index: 0, text, logprobs: lp, finish_reason: ev.finishReason };
          const out = JSON.stringify({ id, object, created, model: body.model, system_fingerprint: null, choices: [choice], usage, fednode });
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out), 'x-fednode-served-by': ev.servedBy, 'x-request-id': id });
          res.end(out);
        }
      }
    }
    if (!complete) throw new InferError('ERR_UPSTREAM_MID_STREAM', 'the serving node ended the stream without a final chunk');
  } catch (err) {
    complete = true;
    if (ac.signal.aborted && res.destroyed) return; // client gone: nothing to tell
    const f = httpFailureOf(err);
    if (res.headersSent) {
      // After the first token: end the SSE stream with an error event (OpenAI clients raise it).
      res.end(`data: ${JSON.stringify({ error: { message: redactUrls(f.message), type: f.type, param: f.param, code: f.code } })}\n\n`);
      return;
    }
    if (f.status >= 500 || f.status === 429) ctx.warn(`${kind} request failed`, { status: f.status, code: f.code, model: body.model });
    sendError(res, f.status, f.type, f.message, f.param, f.code, f.headers);
  }
}

/** Legacy completions logprobs shape from per-token entries. */
function legacyLogprobs(l: readonly TokenLogprob[]): Record<string, unknown> {
  return {
    tokens: l.map((t) => t.token),
    token_logprobs: l.map((t) => t.logprob),
    top_logprobs: l.map((t) => Object.fromEntries(t.top_logprobs.map((x) => [x.token, x.logprob]))),
    text_offset: l.reduce<number[]>((acc, t, i) => [...acc, i === 0 ? 0 : acc[i - 1]! + l[i - 1]!.token.length], []),
  };
}
