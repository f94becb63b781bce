import { FednodeError } from '../../base/errors.js';

/** Stable codes for every p2p failure; callers switch on `code`, never on message text. */
export type P2pErrorCode =
  | 'ERR_PSK_INVALID'
  | 'ERR_INVITE_INVALID'
  | 'ERR_INVITE_EXPIRED'
  | 'ERR_INVITE_USED'
  | 'ERR_INVITE_NOT_MEMBER'
  | 'ERR_INVITE_MISMATCH'
  | 'ERR_MEMBERS_FULL'
  | 'ERR_HOST_NOT_STARTED'
  | 'ERR_TOPIC_UNKNOWN'
  | 'ERR_PUBLISH_OVERSIZE'
  | 'ERR_DIRECT_CLOSED'
  | 'ERR_DIRECT_REFUSED'
  | 'ERR_DIRECT_REJECTED'
  | 'ERR_ADDRBOOK_CORRUPT'
  | 'ERR_PEER_UNRESPONSIVE'
  | 'ERR_OPTIONS';

export class P2pError extends FednodeError<P2pErrorCode> {
  constructor(code: P2pErrorCode, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, data, options);
    this.name = 'P2pError';
  }
}
