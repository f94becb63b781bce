import { FednodeError } from '../../base/errors.js';

/**
 * Errors of the runtime, data directory, config, store, control API and invite
 * tokens. The CLI maps each code to an exit code in exactly one place
 * (cli/exit.ts); nothing matches on message text.
 */
export type RuntimeErrorCode =
  | 'ERR_DATADIR_MISSING'
  | 'ERR_DATADIR_NOT_INITIALISED'
  | 'ERR_DATADIR_EXISTS'
  | 'ERR_DATADIR_LOCKED'
  | 'ERR_DATADIR_PERMISSIONS'
  | 'ERR_CONFIG_MISSING'
  | 'ERR_CONFIG_PARSE'
  | 'ERR_CONFIG_INVALID'
  | 'ERR_CLUSTER_CORRUPT'
  | 'ERR_CLUSTER_MISSING'
  | 'ERR_SWARM_KEY_CORRUPT'
  | 'ERR_STORE_LOCKED'
  | 'ERR_STORE_CORRUPT'
  | 'ERR_STORE_OPEN'
  | 'ERR_TOKEN_MALFORMED'
  | 'ERR_TOKEN_BAD_SIGNATURE'
  | 'ERR_TOKEN_EXPIRED'
  | 'ERR_TOKEN_WRONG_KIND'
  | 'ERR_TOKEN_INVALID'
  | 'ERR_NODE_NOT_RUNNING'
  | 'ERR_CONTROL_UNAUTHORIZED'
  | 'ERR_CONTROL_HTTP'
  /** The control connection was closed or reset before a whole answer arrived (data: url, path). */
  | 'ERR_CONTROL_CUT'
  /** No whole answer from the control API within the request's timeout (data: url, path, timeoutMs). */
  | 'ERR_CONTROL_TIMEOUT'
  /** The control API's answer exceeded CONTROL_RESPONSE_MAX_BYTES. */
  | 'ERR_CONTROL_OVERSIZE'
  | 'ERR_NO_ADDRESSES'
  | 'ERR_NOT_AVAILABLE'
  /** A control request body or query is malformed (data: field, the path of the bad field). */
  | 'ERR_BAD_REQUEST'
  /** `approve` of a peer that is already a member or whose member.add is already decided. */
  | 'ERR_ALREADY_MEMBER'
  /** The pending-joins list (approve mode) is full; approve or let some expire first. */
  | 'ERR_JOINS_FULL';

export class RuntimeError extends FednodeError<RuntimeErrorCode> {
  constructor(code: RuntimeErrorCode, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, data, options);
    this.name = 'RuntimeError';
  }
}

export function isRuntimeError(e: unknown, code?: RuntimeErrorCode): e is RuntimeError {
  return e instanceof RuntimeError && (code === undefined || e.code === code);
}
