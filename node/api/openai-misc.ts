/**
 * GET /v1/models, GET /v1/models/{id} and POST /v1/embeddings (float or base64, as the
 * openai SDK asks for by default).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { ModelEntry } from '../forward/router.js';
import { embeddingsRequestSchema } from './schema.js';
import { httpFailureOf, sendError, sendJson } from './http.js';
import type { ApiContext } from './context.js';
import { readRequest } from './context.js';
import { modelNotFoundMessage } from './context.js';

function modelObject(m: ModelEntry): Record<string, unknown> {
  return {
    id: m.id,
    object: 'model',
    created: 0,
    owned_by: m.simulated ? 'fednode-simulated' : 'fednode',
    fednode: { served_by: m.servedBy, simulated: m.simulated, ...(m.aliasOf !== undefined ? { alias_of: m.aliasOf } : {}) },
  };
}

export function handleModels(ctx: ApiContext, res: ServerResponse): void {
  sendJson(res, 200, { object: 'list', data: ctx.router.models().map(modelObject) });
}

export function handleModel(ctx: ApiContext, id: string, res: ServerResponse): void {
  const models = ctx.router.models();
  const m = models.find((x) => x.id === id);
  if (m === undefined) {
    sendError(res, 404, 'invalid_request_error', modelNotFoundMessage(id, models), 'model', 'model_not_found');
    return;
  }
  sendJson(res, 200, modelObject(m));
}

/** Float32 little-endian, base64: what OpenAI returns for encoding_format=base64. */
export function base64Floats(v: readonly number[]): string {
  const f = new Float32Array(v);
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64');
}

export async function handleEmbeddings(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readRequest(ctx, req, res, embeddingsRequestSchema);
  if (body === null) return;
  const input = typeof body.input === 'string' ? [body.input] : body.input;
  const ac = ctx.abortOnClose(res);
  try {
    for await (const ev of ctx.router.embed({ model: body.model, input, ...(body.dimensions == null ? {} : { dimensions: body.dimensions }) }, { requestId: `emb-${randomUUID()}`, signal: ac.signal })) {
      if (ev.type !== 'embedding') continue;
      const b64 = body.encoding_format === 'base64';
      sendJson(
        res,
        200,
        {
          object: 'list',
          data: ev.vectors.map((v, index) => ({ object: 'embedding', index, embedding: b64 ? base64Floats(v) : v })),
          model: body.model,
          usage: { prompt_tokens: ev.promptTokens, total_tokens: ev.promptTokens },
          fednode: { served_by: ev.servedBy },
        },
        { 'x-fednode-served-by': ev.servedBy },
      );
      return;
    }
  } catch (err) {
    if (ac.signal.aborted && res.destroyed) return;
    const f = httpFailureOf(err);
    if (f.status >= 500 || f.status === 429) ctx.warn('embeddings request failed', { status: f.status, code: f.code, model: body.model });
    sendError(res, f.status, f.type, f.message, f.param, f.code, f.headers);
  }
}
