import { FednodeError } from '../../base/errors.js';
import { BackendError } from '../backends/types.js';

export type InferErrorCode =
  | 'ERR_MODEL_NOT_FOUND' // no live member (nor this node) serves the model
  | 'ERR_BUSY' // bounded queue / per-peer concurrency full: retry later (HTTP 429)
  | 'ERR_ALL_CANDIDATES_FAILED' // every ranked candidate failed before the first token (HTTP 502)
  | 'ERR_UNAVAILABLE' // no candidate could be reached at all (HTTP 503)
  | 'ERR_UPSTREAM_MID_STREAM' // the serving node failed after the first token (stream error event)
  | 'ERR_UPSTREAM_CLIENT' // the backend answered 4xx: data.status, upstreamCode, upstreamType, param (no failover)
  | 'ERR_UNSUPPORTED_PARAM' // no candidate's backend can honour data.param (HTTP 400)
  | 'ERR_BACKEND_UNSUPPORTED' // no candidate's backend has the operation (embeddings, completions) (HTTP 400)
  | 'ERR_ABORTED' // the client went away / cancelled
  | 'ERR_DEADLINE' // the request's deadline passed (HTTP 504)
  | 'ERR_FORWARD_REFUSED' // the remote node refused the forwarded request (not member, hop, bad envelope)
  | 'ERR_FORWARD_PROTOCOL' // malformed frame on the forwarding stream
  | 'ERR_BACKEND'; // the serving node's backend failed

/** Errors of routing/forwarding an inference request. */
export class InferError extends FednodeError<InferErrorCode> {
  constructor(code: InferErrorCode, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, data, options);
    this.name = 'InferError';
  }
}

/** Codes a serving node may send in an error frame (anything else is read as ERR_BACKEND). */
export const WIRE_ERROR_CODES: ReadonlySet<InferErrorCode> = new Set<InferErrorCode>([
  'ERR_BUSY',
  'ERR_DEADLINE',
  'ERR_ABORTED',
  'ERR_FORWARD_REFUSED',
  'ERR_FORWARD_PROTOCOL',
  'ERR_BACKEND',
  'ERR_MODEL_NOT_FOUND',
  'ERR_UPSTREAM_CLIENT',
  'ERR_UNSUPPORTED_PARAM',
  'ERR_BACKEND_UNSUPPORTED',
]);

/** Failures that are the request's fault: the same on every candidate, so no failover. */
export function isClientFault(e: InferError): boolean {
  return e.code === 'ERR_UPSTREAM_CLIENT';
}

/** Failures where a candidate of another kind may do better; reported as 400 when none does. */
export function isUnsupported(e: InferError): boolean {
  return e.code === 'ERR_UNSUPPORTED_PARAM' || e.code === 'ERR_BACKEND_UNSUPPORTED';
}

/** The upstream details an error carries to the API (status, code, type, param). */
export function upstreamData(d: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of ['status', 'upstreamCode', 'upstreamType', 'param']) if (d[k] !== undefined && d[k] !== null) out[k] = d[k];
  return out;
}

/**
 * Any error of a local execution as the InferError the API and the wire use. The message
 * of a backend error is kept; its URL (data.url) is not passed on.
 */
export function toInferError(err: unknown, servedBy: string): InferError {
  if (err instanceof InferError) return err;
  if (err instanceof BackendError) {
    const d = upstreamData(err.data);
    switch (err.code) {
      case 'ERR_UPSTREAM_CLIENT':
        return new InferError('ERR_UPSTREAM_CLIENT', err.message, { ...d, peerId: servedBy }, { cause: err });
      case 'ERR_BACKEND_UNSUPPORTED':
        return new InferError(err.data['param'] !== undefined ? 'ERR_UNSUPPORTED_PARAM' : 'ERR_BACKEND_UNSUPPORTED', err.message, { ...d, peerId: servedBy }, { cause: err });
      case 'ERR_BACKEND_BUSY':
        return new InferError('ERR_BUSY', `backend busy: ${err.message}`, { peerId: servedBy }, { cause: err });
      case 'ERR_BACKEND_MODEL_NOT_FOUND':
        return new InferError('ERR_MODEL_NOT_FOUND', err.message, { peerId: servedBy }, { cause: err });
      case 'ERR_BACKEND_ABORTED':
        return new InferError('ERR_ABORTED', err.message, { peerId: servedBy }, { cause: err });
      default:
        return new InferError('ERR_BACKEND', `${err.code}: ${err.message}`, { peerId: servedBy }, { cause: err });
    }
  }
  return new InferError('ERR_BACKEND', err instanceof Error ? err.message : String(err), { peerId: servedBy }, { cause: err });
}
