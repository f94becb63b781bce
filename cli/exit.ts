/**
 * Exit codes of `fednode`, the ONE place an error code becomes an exit status.
 *   0 ok
 *   1 failure (anything not listed below; doctor found a problem)
 *   2 usage error (unknown flag, missing argument, bad value)
 *   3 data directory missing or not initialised / node not in a cluster
 *   4 data directory locked by another running node
 *   5 corrupt or unsafe data (config, cluster file, swarm key, store, address book, key file or its permissions)
 *   6 no node running on this data directory (control API unreachable)
 *   7 bad invite token (malformed, tampered, expired, wrong kind)
 *   8 the node did not answer: the control connection was cut, timed out or answered too much
 * SIGINT/SIGTERM during `start` or `cluster` shut down cleanly and exit 0.
 */
import { FednodeError } from '../base/errors.js';

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
} as const;

/** What each exit status means: `fednode help exit-codes` prints exactly this table. */
export const EXIT_MEANING: Readonly<Record<(typeof EXIT)[keyof typeof EXIT], string>> = {
  0: 'ok (also: start/cluster stopped cleanly by SIGINT/SIGTERM)',
  1: 'failure (doctor found a problem; anything not below)',
  2: 'usage error (unknown flag, missing argument, bad value)',
  3: 'data directory missing or not initialised, or the node is in no cluster',
  4: 'data directory locked by another running node',
  5: 'corrupt or unsafe data (config, cluster file, swarm key, store, key file, permissions)',
  6: 'no node running on this data directory',
  7: 'bad invite token (malformed, tampered, expired)',
  8: 'the node did not answer: the control connection was cut, timed out or answered too much',
};

export function exitCodesHelp(): string {
  return ['exit codes:', ...Object.entries(EXIT_MEANING).map(([c, m]) => `  ${c}  ${m}`)].join('\n') + '\n';
}

export function exitCodeFor(e: unknown): number {
  if (!(e instanceof FednodeError)) return EXIT.failure;
  switch (e.code) {
    case 'ERR_USAGE':
    case 'ERR_SIMNET_OPTIONS':
      return EXIT.usage;
    case 'ERR_DATADIR_MISSING':
    case 'ERR_DATADIR_NOT_INITIALISED':
    case 'ERR_CONFIG_MISSING':
    case 'ERR_CLUSTER_MISSING':
    case 'ERR_KEY_FILE_MISSING':
      return EXIT.dataDir;
    case 'ERR_DATADIR_LOCKED':
    case 'ERR_STORE_LOCKED':
      return EXIT.locked;
    case 'ERR_CONFIG_PARSE':
    case 'ERR_CONFIG_INVALID':
    case 'ERR_CLUSTER_CORRUPT':
    case 'ERR_SWARM_KEY_CORRUPT':
    case 'ERR_STORE_CORRUPT':
    case 'ERR_DATADIR_PERMISSIONS':
    case 'ERR_KEY_FILE_CORRUPT':
    case 'ERR_KEY_FILE_PERMISSIONS':
    case 'ERR_PSK_INVALID':
    case 'ERR_ADDRBOOK_CORRUPT':
      return EXIT.corrupt;
    case 'ERR_NODE_NOT_RUNNING':
      return EXIT.notRunning;
    case 'ERR_CONTROL_CUT':
    case 'ERR_CONTROL_TIMEOUT':
    case 'ERR_CONTROL_OVERSIZE':
      return EXIT.noAnswer;
    case 'ERR_TOKEN_MALFORMED':
    case 'ERR_TOKEN_BAD_SIGNATURE':
    case 'ERR_TOKEN_EXPIRED':
    case 'ERR_TOKEN_WRONG_KIND':
    case 'ERR_TOKEN_INVALID':
      return EXIT.badToken;
    default:
      return EXIT.failure;
  }
}
