/**
 * Exit codes of `fednode`, the ONE place an exit class becomes an exit status (each error
 * code's class is in the registry, base/error-codes.ts; `fednode help errors` lists them).
 *   0 ok
 *   1 failure (anything not listed below; doctor found a problem)
 *   2 usage error (unknown flag, missing argument, bad value)
 *   3 data directory missing or not initialised / node not in a cluster
 *   4 data directory locked by another running node
 *   5 corrupt or unsafe data (config, cluster file, swarm key, store, store manifest, signer record, address book, key file or its permissions)
 *   6 no node running on this data directory (control API unreachable)
 *   7 bad invite token (malformed, tampered, expired, wrong kind)
 *   8 the node did not answer: the control connection was cut, timed out or answered too much
 * SIGINT/SIGTERM during `start` or `cluster` shut down cleanly and exit 0.
 */
import { FednodeError } from '../base/errors.js';
import { ERROR_CODES } from '../base/error-codes.js';
import type { ErrorCode, ExitClass } from '../base/error-codes.js';

export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  dataDir: 3,
  locked: 4,
  corrupt: 5,
  notRunning: 6,
  badToken: 7,
  noAnswer: 8,
} as const satisfies Record<ExitClass | 'ok', number>;

/** What each exit status means: `fednode help exit-codes` prints exactly this table. */
export const EXIT_MEANING: Readonly<Record<(typeof EXIT)[keyof typeof EXIT], string>> = {
  0: 'ok (also: start/cluster stopped cleanly by SIGINT/SIGTERM)',
  1: 'failure (doctor found a problem; anything not below)',
  2: 'usage error (unknown flag, missing argument, bad value)',
  3: 'data directory missing or not initialised, or the node is in no cluster',
  4: 'data directory locked by another running node',
  5: 'corrupt or unsafe data (config, cluster file, swarm key, store, store manifest, signer record, key file, permissions); `fednode repair --from-peers` rebuilds a damaged store',
  6: 'no node running on this data directory',
  7: 'bad invite token (malformed, tampered, expired)',
  8: 'the node did not answer: the control connection was cut, timed out or answered too much',
};

export function exitCodesHelp(): string {
  return ['exit codes:', ...Object.entries(EXIT_MEANING).map(([c, m]) => `  ${c}  ${m}`)].join('\n') + '\n';
}

/** The exit status of an error: its code's exit class in the registry (base/error-codes.ts). */
export function exitCodeFor(e: unknown): number {
  if (!(e instanceof FednodeError)) return EXIT.failure;
  const code: ErrorCode = (e as FednodeError).code; // instanceof on a generic class narrows to FednodeError<any>
  return EXIT[ERROR_CODES[code].exit];
}

/** `fednode help errors`: every error code, its exit status and meaning, grouped by room. */
export function errorCodesHelp(): string {
  const rows = Object.entries(ERROR_CODES).sort(([a, x], [b, y]) => x.family.localeCompare(y.family) || a.localeCompare(b));
  const width = Math.max(...rows.map(([c]) => c.length));
  const out = ['error codes (code, exit status, meaning), by the room that raises them:'];
  let family = '';
  for (const [code, info] of rows) {
    if (info.family !== family) {
      family = info.family;
      out.push(`${family}:`);
    }
    out.push(`  ${code.padEnd(width)}  ${EXIT[info.exit]}  ${info.meaning}`);
  }
  return out.join('\n') + '\n';
}
