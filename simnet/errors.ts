import { FednodeError } from '../base/errors.js';

export type SimnetErrorCode =
  /** Bad options to runSimnet / the network model (message says which). */
  | 'ERR_SIMNET_OPTIONS'
  /** The event queue or the event budget of one run went over its bound. */
  | 'ERR_SIMNET_LIMIT'
  /** The consensus core threw while being driven (a bug in the core or the driver). */
  | 'ERR_SIMNET_CORE'
  /** A simulated catch-up request got no reply in time (the driver counts it and asks another peer). */
  | 'ERR_SIMNET_SYNC_TIMEOUT';

export class SimnetError extends FednodeError<SimnetErrorCode> {
  constructor(code: SimnetErrorCode, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, data, options);
    this.name = 'SimnetError';
  }
}
