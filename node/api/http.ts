/**
 * Small HTTP helpers of the inference API: JSON replies, OpenAI-shaped errors, bounded
 * JSON bodies (415 for a body that is not application/json), and the mapping of routing
 * errors to HTTP statuses shared by the OpenAI and Ollama surfaces.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InferError } from '../forward/errors.js';

export type OpenAiErrorType = 'invalid_request_error' | 'authentication_error' | 'permission_error' | 'rate_limit_error' | 'server_error' | 'not_found_error';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendError(res: ServerResponse, status: number, type: OpenAiErrorType, message: string, param: string | null, code: string | null, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: { message, type, param, code } }, headers);
}

/** Upstream and peer URLs never reach an API client (they are the operator's). */
export function redactUrls(text: string): string {
  return text.replace(/\bhttps?:\/\/[^\s'"),]+/g, '<upstream>');
}

export interface HttpFailure {
  status: number;
  type: OpenAiErrorType;
  code: string;
  param: string | null;
  message: string;
  headers: Record<string, string>;
}

/** One mapping from routing/backend failures to HTTP, for every endpoint. */
export function httpFailureOf(err: unknown): HttpFailure {
  const e = err instanceof InferError ? err : null;
  const message = redactUrls(err instanceof Error ? err.message : String(err));
  const param = typeof e?.data['param'] === 'string' ? e.data['param'] : null;
  const base = { message, param, headers: {} as Record<string, string> };
  switch (e?.code) {
    case 'ERR_MODEL_NOT_FOUND':
      return { ...base, status: 404, type: 'invalid_request_error', code: 'model_not_found', param: 'model' };
    case 'ERR_BUSY':
      return { ...base, status: 429, type: 'rate_limit_error', code: 'overloaded', headers: { 'retry-after': String((e.data['retryAfterS'] as number | undefined) ?? 1) } };
    case 'ERR_DEADLINE':
      return { ...base, status: 504, type: 'server_error', code: 'deadline_exceeded' };
    case 'ERR_ALL_CANDIDATES_FAILED':
      return { ...base, status: 502, type: 'server_error', code: 'upstream_failed' };
    case 'ERR_UNAVAILABLE':
      return { ...base, status: 503, type: 'server_error', code: 'unavailable', headers: { 'retry-after': '1' } };
    case 'ERR_UPSTREAM_CLIENT': {
      const st = typeof e.data['status'] === 'number' && e.data['status'] >= 400 && e.data['status'] < 500 ? e.data['status'] : 400;
      const code = typeof e.data['upstreamCode'] === 'string' ? e.data['upstreamCode'] : 'invalid_request';
      return { ...base, status: st, type: 'invalid_request_error', code, message: message.replace(/^served by \S+: /, '').replace(/^\S+ refused or failed: served by \S+: /, '') };
    }
    case 'ERR_UNSUPPORTED_PARAM':
      return { ...base, status: 400, type: 'invalid_request_error', code: 'unsupported_parameter' };
    case 'ERR_BACKEND_UNSUPPORTED':
      return { ...base, status: 400, type: 'invalid_request_error', code: 'unsupported_operation' };
    default:
      return { ...base, status: 500, type: 'server_error', code: e?.code ?? 'internal_error' };
  }
}

/** Largest body of a JSON endpoint. @default 4 MiB (a long chat history) */
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

export type BodyResult = { ok: true; json: unknown } | { ok: false };

/**
 * Reads a JSON body: 415 unless `content-type: application/json` (a browser's cross-site
 * "simple" POST cannot send it without a preflight), 413 above the bound, 400 for bad JSON.
 */
export function readJsonBody(req: IncomingMessage, res: ServerResponse, maxBodyBytes: number): Promise<BodyResult> {
  const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (ct !== 'application/json') {
    res.once('finish', () => req.resume());
    sendError(res, 415, 'invalid_request_error', `Content-Type must be application/json (got ${ct === '' ? 'none' : ct})`, null, 'unsupported_media_type');
    return Promise.resolve({ ok: false });
  }
  return new Promise((resolve) => {
    const declared = Number(req.headers['content-length'] ?? NaN);
    const tooLarge = (): void => {
      res.once('finish', () => req.socket.destroy());
      sendError(res, 413, 'invalid_request_error', `request body larger than ${maxBodyBytes} bytes`, null, 'request_too_large', { connection: 'close' });
      resolve({ ok: false });
    };
    if (Number.isFinite(declared) && declared > maxBodyBytes) {
      tooLarge();
      return;
    }
    const parts: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > maxBodyBytes) {
        done = true;
        tooLarge();
        return;
      }
      parts.push(c);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      try {
        resolve({ ok: true, json: JSON.parse(Buffer.concat(parts).toString('utf8')) as unknown });
      } catch (err) {
        sendError(res, 400, 'invalid_request_error', `invalid JSON body: ${(err as Error).message}`, null, 'invalid_json');
        resolve({ ok: false });
      }
    });
    req.on('error', () => {
      if (done) return;
      done = true;
      resolve({ ok: false });
    });
  });
}
