import { FednodeError } from '../base/errors.js';

export type RoutingErrorCode = 'ERR_ROUTING_PARAMS' | 'ERR_ROUTING_INPUT';

/** A bad argument to the routing policy (params out of range, malformed candidate). */
export class RoutingError extends FednodeError<RoutingErrorCode> {
  constructor(code: RoutingErrorCode, message: string, data: Record<string, unknown> = {}) {
    super(code, message, data);
    this.name = 'RoutingError';
  }
}
