import { FednodeError } from '../../base/errors.js';

export type InferErrorCode =
  | 'ERR_MODEL_NOT_FOUND' // no live member (nor this node) serves the model
  | 'ERR_BUSY' // bounded queue / per-peer concurrency full: retry later (HTTP 429)
  | 'ERR_ALL_CANDIDATES_FAILED' // every ranked candidate failed before the first token (HTTP 502)
  | 'ERR_UPSTREAM_MID_STREAM' // the serving node failed after the first token (stream error event)
  | 'ERR_ABORTED' // the client went away / cancelled
  | 'ERR_DEADLINE' // the request's deadline passed (HTTP 504)
  | 'ERR_FORWARD_REFUSED' // the remote node refused the forwarded request (not member, hop, bad envelope)
  | 'ERR_FORWARD_PROTOCOL' // malformed frame on the forwarding stream
  | 'ERR_BACKEND'; // the serving node's backend failed

/** Errors of routing/forwarding an inference request; `data.retryable` says if failover may help. */
export class InferError extends FednodeError<InferErrorCode> {
  constructor(code: InferErrorCode, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, data, options);
    this.name = 'InferError';
  }
}
