/**
 * What every API handler shares: the router, limits, the clock, the model check that makes
 * an unknown model a 404 before anything is routed (llama-server would answer it with its
 * own model), abort-on-disconnect, and the rate-limited warning log.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import type { LogData } from '../log.js';
import type { ChatRequest, CompletionRequest, EmbedRequest } from '../backends/types.js';
import type { ModelEntry, RouteCall, RoutedEmbedEvent, RoutedEvent } from '../forward/router.js';
import { readJsonBody, sendError } from './http.js';
import { describeZodError } from './schema.js';

/** What the API needs from the node's router (InferenceRouter satisfies it). */
export interface ApiRouter {
  readonly localPeerId: string;
  models(): ModelEntry[];
  chat(req: ChatRequest, call: RouteCall): AsyncIterable<RoutedEvent>;
  complete(req: CompletionRequest, call: RouteCall): AsyncIterable<RoutedEvent>;
  embed(req: EmbedRequest, call: RouteCall): AsyncIterable<RoutedEmbedEvent>;
  readonly routing?: number;
}

export interface ApiContext {
  readonly router: ApiRouter;
  readonly maxBodyBytes: number;
  readonly nodeName: string;
  now(): number;
  /** Answers 404 model_not_found (listing the models) and returns false when no live member serves `model`. */
  modelKnown(model: string, res: ServerResponse): boolean;
  /** An AbortController aborted when the client goes away before the reply is complete. */
  abortOnClose(res: ServerResponse): AbortController;
  /** Rate-limited warning (kind = msg). */
  warn(msg: string, data?: LogData): void;
}

export function modelNotFoundMessage(model: string, models: readonly ModelEntry[]): string {
  const list = models.map((m) => m.id);
  return `The model '${model}' does not exist or is not served by any live member. Available models: ${list.length === 0 ? '(none)' : list.join(', ')}`;
}

export function makeContext(o: { router: ApiRouter; maxBodyBytes: number; nodeName: string; now: () => number; warn: (msg: string, data?: LogData) => void }): ApiContext {
  return {
    router: o.router,
    maxBodyBytes: o.maxBodyBytes,
    nodeName: o.nodeName,
    now: o.now,
    warn: o.warn,
    modelKnown(model, res) {
      const models = o.router.models();
      if (models.some((m) => m.id === model)) return true;
      sendError(res, 404, 'invalid_request_error', modelNotFoundMessage(model, models), 'model', 'model_not_found');
      return false;
    },
    abortOnClose(res) {
      const ac = new AbortController();
      res.on('close', () => {
        if (!res.writableFinished) ac.abort(); // client went away: abort the backend / forwarded request
      });
      return ac;
    },
  };
}

/**
 * An OpenAI endpoint's request: JSON body, schema (400 naming the field), and a model some
 * live member serves (404). null = answered already.
 */
export async function readRequest<T extends { model: string }>(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, schema: z.ZodType<T>): Promise<T | null> {
  const raw = await readJsonBody(req, res, ctx.maxBodyBytes);
  if (!raw.ok) return null;
  const parsed = schema.safeParse(raw.json);
  if (!parsed.success) {
    const d = describeZodError(parsed.error);
    sendError(res, 400, 'invalid_request_error', d.message, d.param, 'invalid_request');
    return null;
  }
  return ctx.modelKnown(parsed.data.model, res) ? parsed.data : null;
}
