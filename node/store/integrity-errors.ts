import { FednodeError } from '../../base/errors.js';

/**
 * Errors of the store-integrity checks (node/store/integrity.ts). Every one names the file it is
 * about (`data.file`) and the recovery (`data.recovery`); the CLI maps all of them to exit 5
 * (corrupt data, cli/exit.ts).
 */
export type IntegrityErrorCode =
  /** The store manifest (store-manifest.json) is missing where the store says it had one, or unreadable. */
  | 'ERR_MANIFEST_CORRUPT'
  /** The store is missing, recreated, truncated or disagrees with the manifest (heights lost, other hash, other node). */
  | 'ERR_STORE_INTEGRITY'
  /** The signer record is missing or older than the manifest records: the node could double-sign. */
  | 'ERR_SIGNER_INTEGRITY'
  /** LevelDB reported corruption while the node was running: the node stops instead of going on with a partial state. */
  | 'ERR_STORE_CORRUPT_RUNNING'
  /** `fednode repair` could not finish (no peer reachable, cluster behind the manifest, ...). */
  | 'ERR_REPAIR_FAILED';

export class IntegrityError extends FednodeError<IntegrityErrorCode> {
  constructor(code: IntegrityErrorCode, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, data, options);
    this.name = 'IntegrityError';
  }
}
