/**
 * OpenAI request schemas for the fields fednode passes through. Objects are strict: a
 * field fednode does not know is a 400 naming it, never silently dropped.
 */
import { z } from 'zod';

/** Messages per request: 1024 is far above real chats and bounds validation work. */
export const MAX_MESSAGES = 1024;
/** Tools per request (OpenAI's limit). */
export const MAX_TOOLS = 128;
/** Embedding inputs per request (OpenAI's limit). */
export const MAX_EMBED_INPUTS = 2048;

const jsonObject = z.record(z.string(), z.unknown());
const textPart = z.strictObject({ type: z.literal('text'), text: z.string() });

export const toolCallSchema = z.strictObject({
  id: z.string().min(1).max(256),
  type: z.literal('function'),
  function: z.strictObject({ name: z.string().min(1).max(256), arguments: z.string() }),
});

export const chatMessageSchema = z.strictObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string(), z.array(textPart).max(256), z.null()]).optional(),
  name: z.string().max(256).optional(),
  tool_calls: z.array(toolCallSchema).max(MAX_TOOLS).optional(),
  tool_call_id: z.string().max(256).optional(),
  // echoed back by SDKs when a reply is appended to the history; carry no content here
  refusal: z.null().optional(),
  annotations: z.array(z.unknown()).max(0).optional(),
});

export const toolSchema = z.strictObject({
  type: z.literal('function'),
  function: z.strictObject({ name: z.string().min(1).max(256), description: z.string().max(65_536).optional(), parameters: jsonObject.optional(), strict: z.boolean().nullish() }),
});

export const toolChoiceSchema = z.union([z.enum(['none', 'auto', 'required']), z.strictObject({ type: z.literal('function'), function: z.strictObject({ name: z.string().min(1).max(256) }) })]);

export const responseFormatSchema = z.union([
  z.strictObject({ type: z.literal('text') }),
  z.strictObject({ type: z.literal('json_object') }),
  z.strictObject({
    type: z.literal('json_schema'),
    json_schema: z.strictObject({ name: z.string().min(1).max(256), description: z.string().optional(), schema: jsonObject.optional(), strict: z.boolean().nullish() }),
  }),
]);

const sampling = {
  model: z.string().min(1).max(256),
  stream: z.boolean().nullish(),
  stream_options: z.strictObject({ include_usage: z.boolean().nullish() }).nullish(),
  max_tokens: z.number().int().positive().max(1_000_000).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  top_k: z.number().int().min(0).max(100_000).nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(16)]).nullish(),
  seed: z.number().int().nullish(),
  n: z.literal(1).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  logit_bias: z.record(z.string().regex(/^\d+$/, 'token ids'), z.number().min(-100).max(100)).nullish(),
  user: z.string().max(256).nullish(),
};

export const chatCompletionRequestSchema = z.strictObject({
  ...sampling,
  messages: z.array(chatMessageSchema).min(1).max(MAX_MESSAGES),
  max_completion_tokens: z.number().int().positive().max(1_000_000).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  tools: z.array(toolSchema).max(MAX_TOOLS).nullish(),
  tool_choice: toolChoiceSchema.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  response_format: responseFormatSchema.nullish(),
  // nothing is stored: store true cannot be honoured
  store: z.literal(false).nullish(),
});

export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;

export const completionRequestSchema = z.strictObject({
  ...sampling,
  prompt: z.union([z.string(), z.array(z.string()).length(1)]),
  logprobs: z.number().int().min(0).max(5).nullish(),
  echo: z.literal(false).nullish(),
  best_of: z.literal(1).nullish(),
  suffix: z.null().optional(),
});

export type CompletionApiRequest = z.infer<typeof completionRequestSchema>;

export const embeddingsRequestSchema = z.strictObject({
  model: z.string().min(1).max(256),
  input: z.union([z.string(), z.array(z.string()).min(1).max(MAX_EMBED_INPUTS)]),
  encoding_format: z.enum(['float', 'base64']).nullish(),
  dimensions: z.number().int().positive().max(65_536).nullish(),
  user: z.string().max(256).nullish(),
});

/** A readable one-line description of the first few schema problems. */
export function describeZodError(err: z.ZodError): { message: string; param: string | null } {
  const first = err.issues[0];
  let param = first === undefined ? null : first.path.map(String).join('.') || null;
  if (first?.code === 'unrecognized_keys') param = [...(param === null ? [] : [param]), first.keys[0]].join('.');
  const message = err.issues
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.map(String).join('.') : 'body'}: ${i.code === 'unrecognized_keys' ? `unsupported field(s) ${i.keys.map((k) => `'${k}'`).join(', ')}` : i.message}`)
    .join('; ');
  return { message: `invalid request: ${message}`, param };
}
