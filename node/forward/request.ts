/**
 * The forwarded request: the signed `infer-request` envelope body and the request it
 * carries. The request travels as JSON text inside the envelope (signed with it): JSON
 * schemas of tools and response formats keep their key order (a model generates
 * properties in that order), which canonical CBOR would sort.
 */
import { z } from 'zod';
import type { ChatRequest, CompletionRequest, EmbedRequest } from '../backends/types.js';

export const INFER_PROTOCOL = '/fednode/infer/2.0.0';
export const INFER_REQUEST_KIND = 'infer-request';
/** A forwarded request may make exactly one hop (requester -> server). */
export const MAX_HOPS = 1;
/** Messages per request (OpenAI allows long chats; 1024 bounds decode work). */
export const MAX_MESSAGES = 1024;
/** Tools per request: OpenAI's own limit is 128. */
export const MAX_TOOLS = 128;
/** Inputs per embeddings request: OpenAI's limit is 2048. */
export const MAX_EMBED_INPUTS = 2048;

export type InferOp = 'chat' | 'complete' | 'embed';

export interface InferRequestBody {
  requestId: string;
  model: string;
  /** Unix ms after which the server gives up. */
  deadlineMs: number;
  hop: number;
  op: InferOp;
  /** JSON of the ChatRequest / CompletionRequest / EmbedRequest (model included). */
  request: string;
}

const json = z.record(z.string(), z.unknown());
const toolCall = z.strictObject({ id: z.string().max(256), type: z.literal('function'), function: z.strictObject({ name: z.string().max(256), arguments: z.string() }) });

const sampling = {
  model: z.string().min(1).max(256),
  maxTokens: z.number().int().positive().max(1_000_000).optional(),
  temperature: z.number().min(0).max(2).optional(),
  topP: z.number().min(0).max(1).optional(),
  topK: z.number().int().min(0).max(100_000).optional(),
  stop: z.array(z.string()).max(16).optional(),
  seed: z.number().int().optional(),
  presencePenalty: z.number().min(-2).max(2).optional(),
  frequencyPenalty: z.number().min(-2).max(2).optional(),
  logitBias: z.record(z.string(), z.number().min(-100).max(100)).optional(),
  logprobs: z.boolean().optional(),
  topLogprobs: z.number().int().min(0).max(20).optional(),
  user: z.string().max(256).optional(),
};

export const chatRequestSchema = z.strictObject({
  ...sampling,
  messages: z
    .array(
      z.strictObject({
        role: z.enum(['system', 'user', 'assistant', 'tool']),
        content: z.string(),
        toolCalls: z.array(toolCall).max(MAX_TOOLS).optional(),
        toolCallId: z.string().max(256).optional(),
        name: z.string().max(256).optional(),
      }),
    )
    .min(1)
    .max(MAX_MESSAGES),
  tools: z
    .array(z.strictObject({ type: z.literal('function'), function: z.strictObject({ name: z.string().min(1).max(256), description: z.string().optional(), parameters: json.optional(), strict: z.boolean().optional() }) }))
    .max(MAX_TOOLS)
    .optional(),
  toolChoice: z.union([z.enum(['none', 'auto', 'required']), z.strictObject({ type: z.literal('function'), function: z.strictObject({ name: z.string() }) })]).optional(),
  parallelToolCalls: z.boolean().optional(),
  responseFormat: z
    .union([
      z.strictObject({ type: z.literal('text') }),
      z.strictObject({ type: z.literal('json_object') }),
      z.strictObject({ type: z.literal('json_schema'), json_schema: z.strictObject({ name: z.string().max(256), description: z.string().optional(), schema: json.optional(), strict: z.boolean().optional() }) }),
    ])
    .optional(),
});

export const completionRequestSchema = z.strictObject({ ...sampling, prompt: z.string() });

export const embedRequestSchema = z.strictObject({
  model: z.string().min(1).max(256),
  input: z.array(z.string()).min(1).max(MAX_EMBED_INPUTS),
  dimensions: z.number().int().positive().max(65_536).optional(),
});

export type ParsedRequest = { op: 'chat'; req: ChatRequest } | { op: 'complete'; req: CompletionRequest } | { op: 'embed'; req: EmbedRequest };

/** Validates the envelope body and the request it carries. */
export function parseRequestBody(b: unknown): { ok: true; body: InferRequestBody; parsed: ParsedRequest } | { ok: false; detail: string } {
  if (typeof b !== 'object' || b === null || Array.isArray(b)) return { ok: false, detail: 'body is not a map' };
  const r = b as Record<string, unknown>;
  if (typeof r['requestId'] !== 'string' || r['requestId'].length === 0 || r['requestId'].length > 128) return { ok: false, detail: 'requestId must be a 1..128 character string' };
  if (typeof r['model'] !== 'string' || r['model'].length === 0 || r['model'].length > 256) return { ok: false, detail: 'model must be a 1..256 character string' };
  if (typeof r['deadlineMs'] !== 'number' || !Number.isSafeInteger(r['deadlineMs'])) return { ok: false, detail: 'deadlineMs must be an integer' };
  if (typeof r['hop'] !== 'number' || !Number.isSafeInteger(r['hop'])) return { ok: false, detail: 'hop must be an integer' };
  const op = r['op'];
  if (op !== 'chat' && op !== 'complete' && op !== 'embed') return { ok: false, detail: 'op must be chat, complete or embed' };
  if (typeof r['request'] !== 'string') return { ok: false, detail: 'request must be JSON text' };
  let j: unknown;
  try {
    j = JSON.parse(r['request']);
  } catch (e) {
    return { ok: false, detail: `request is not JSON: ${(e as Error).message}` };
  }
  const schema = op === 'chat' ? chatRequestSchema : op === 'complete' ? completionRequestSchema : embedRequestSchema;
  const p = schema.safeParse(j);
  if (!p.success) return { ok: false, detail: `request: ${p.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` };
  if ((p.data as { model: string }).model !== r['model']) return { ok: false, detail: 'request.model differs from the envelope model' };
  const body: InferRequestBody = { requestId: r['requestId'], model: r['model'], deadlineMs: r['deadlineMs'], hop: r['hop'], op, request: r['request'] };
  return { ok: true, body, parsed: { op, req: p.data } as ParsedRequest };
}
