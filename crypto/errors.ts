import { FednodeError } from '../base/errors.js';

export type CryptoErrorCode =
  | 'ERR_CBOR_OVERSIZE'
  | 'ERR_CBOR_DECODE'
  | 'ERR_CBOR_NON_CANONICAL'
  | 'ERR_CBOR_UNKNOWN_FIELD'
  | 'ERR_CBOR_SCHEMA'
  | 'ERR_CBOR_ENCODE'
  | 'ERR_KEY_FILE_MISSING'
  | 'ERR_KEY_FILE_PERMISSIONS'
  | 'ERR_KEY_FILE_CORRUPT'
  | 'ERR_KEY_FILE_EXISTS'
  | 'ERR_KEY_INVALID'
  | 'ERR_BLAKE3_CONTEXT';

export class CryptoError extends FednodeError<CryptoErrorCode> {
  constructor(code: CryptoErrorCode, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, data, options);
    this.name = 'CryptoError';
  }
}
