import type { ErrorCode } from './error-codes.js';

/**
 * The project's one error base class. One subclass per condition family (crypto, runtime,
 * consensus, routing, ...), each with a stable `code` from the one registry
 * (base/error-codes.ts: the type refuses any code not listed there) and structured `data`;
 * nothing is ever identified by its message text. The registry gives each code its exit class;
 * cli/exit.ts turns the class into the exit status.
 */
export class FednodeError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  readonly data: Readonly<Record<string, unknown>>;
  constructor(code: C, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FednodeError';
    this.code = code;
    this.data = data;
  }
}

/** True when `e` is a FednodeError (any family), optionally with the given code. */
export function isFednodeError(e: unknown, code?: string): e is FednodeError {
  return e instanceof FednodeError && (code === undefined || e.code === code);
}

/** Node's system errors carry a string `code` (ENOENT, EACCES, ...). */
export function errnoCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e) {
    const c = e.code;
    return typeof c === 'string' ? c : undefined;
  }
  return undefined;
}
