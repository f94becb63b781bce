/**
 * OpenAI chat-completions request schema (the subset fednode honours; unknown fields
 * are accepted and ignored, as OpenAI-compatible servers do).
 */
import { z } from 'zod';

/** Messages per request: 1024 is far above real chats and bounds validation work. */
export const MAX_MESSAGES = 1024;

const contentPart = z.object({ type: z.literal('text'), text: z.string() });

export const chatMessageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string(), z.array(contentPart).max(256), z.null()]),
  name: z.string().max(256).optional(),
});

export const chatCompletionRequestSchema = z.object({
  model: z.string().min(1).max(256),
  messages: z.array(chatMessageSchema).min(1).max(MAX_MESSAGES),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  max_tokens: z.number().int().positive().max(1_000_000).nullish(),
  max_completion_tokens: z.number().int().positive().max(1_000_000).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(16)]).nullish(),
  seed: z.number().int().nullish(),
  n: z.literal(1).nullish(),
  user: z.string().max(256).nullish(),
});

export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;

/** A readable one-line description of the first few schema problems. */
export function describeZodError(err: z.ZodError): { message: string; param: string | null } {
  const first = err.issues[0];
  const param = first === undefined ? null : first.path.map(String).join('.') || null;
  const message = err.issues
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.map(String).join('.') : 'body'}: ${i.message}`)
    .join('; ');
  return { message: `invalid request: ${message}`, param };
}
