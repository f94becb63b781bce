/**
 * The project's ONE error-code registry. Every code a fednode error carries, a control or API
 * error body names, or a forward frame reports is listed here once, with the room that raises
 * it, the class of exit status the CLI gives it (cli/exit.ts turns the class into a number)
 * and what it means. FednodeError only accepts codes of this table (the type checker refuses
 * any other), and test/unit/meta/error-codes.test.ts checks that every `'ERR_...'` literal in
 * the sources is listed and that every listed code is raised somewhere.
 * `fednode help errors` prints this table.
 */

/** The class of exit status an error gives `fednode` (cli/exit.ts EXIT). */
export type ExitClass = 'failure' | 'usage' | 'dataDir' | 'locked' | 'corrupt' | 'notRunning' | 'badToken' | 'noAnswer';

export type ErrorFamily =
  | 'base'
  | 'crypto'
  | 'consensus'
  | 'routing'
  | 'runtime'
  | 'control'
  | 'store'
  | 'p2p'
  | 'adverts'
  | 'backends'
  | 'infer'
  | 'api'
  | 'metrics'
  | 'dashboard'
  | 'simnet'
  | 'cli';

export interface ErrorCodeInfo {
  readonly family: ErrorFamily;
  readonly exit: ExitClass;
  readonly meaning: string;
}

const e = (family: ErrorFamily, exit: ExitClass, meaning: string): ErrorCodeInfo => ({ family, exit, meaning });

export const ERROR_CODES = {
  // base
  ERR_DURABLE_WRITE: e('base', 'failure', 'a durable write (tmp file, fsync, rename, fsync of the directory) failed; the previous file is intact'),
  ERR_PRNG_ARGS: e('base', 'failure', 'the seeded PRNG was asked for an impossible draw (empty range, bad bounds)'),
  ERR_REQRESP_BAD_FRAME: e('base', 'failure', 'a framed request/response stream carried a frame over its bound or not decodable'),
  ERR_REQRESP_NO_REPLY: e('base', 'failure', 'a framed request/response stream closed without a reply'),
  ERR_REQRESP_TIMEOUT: e('base', 'failure', 'a framed request/response got no reply within its deadline'),

  // crypto
  ERR_BLAKE3_CONTEXT: e('crypto', 'failure', 'a BLAKE3 domain-separation context string is empty or not ASCII'),
  ERR_CBOR_DECODE: e('crypto', 'failure', 'bytes are not valid CBOR'),
  ERR_CBOR_ENCODE: e('crypto', 'failure', 'a value cannot be encoded as canonical CBOR (unsupported type, non-integer number)'),
  ERR_CBOR_NON_CANONICAL: e('crypto', 'failure', 'CBOR is valid but not in canonical form (key order, shortest length): refused so digests are unique'),
  ERR_CBOR_OVERSIZE: e('crypto', 'failure', 'CBOR input exceeds the size bound of its message kind'),
  ERR_CBOR_SCHEMA: e('crypto', 'failure', 'decoded CBOR does not have the expected fields or types'),
  ERR_CBOR_UNKNOWN_FIELD: e('crypto', 'failure', 'decoded CBOR carries a field its schema does not know (nothing is silently dropped)'),
  ERR_KEY_FILE_CORRUPT: e('crypto', 'corrupt', 'the node key file is not a valid key file'),
  ERR_KEY_FILE_EXISTS: e('crypto', 'failure', 'a key file already exists where a new one was to be written (never overwritten)'),
  ERR_KEY_FILE_MISSING: e('crypto', 'dataDir', 'the node key file is missing'),
  ERR_KEY_FILE_PERMISSIONS: e('crypto', 'corrupt', 'the node key file is readable by group or others (must be 0600)'),
  ERR_KEY_INVALID: e('crypto', 'failure', 'a public or private key has the wrong length or encoding'),
  ERR_VERIFY_POOL_CLOSED: e('crypto', 'failure', 'a signature batch was sent to a closed verify pool'),
  ERR_VERIFY_POOL_FULL: e('crypto', 'failure', 'the verify pool queue is at its bound'),
  ERR_VERIFY_WORKER: e('crypto', 'failure', 'a verify worker thread failed'),

  // consensus (pure core and registry)
  ERR_CONSENSUS_CONFIG: e('consensus', 'failure', 'consensus parameters out of range (timeouts, validator set)'),
  ERR_PATTERN_ENCODING: e('consensus', 'failure', 'a pattern op does not encode or decode canonically'),
  ERR_PATTERN_INVALID: e('consensus', 'failure', 'a pattern op is invalid for the registry it applies to'),
  ERR_VALIDATOR_SET: e('consensus', 'failure', 'a validator set is empty, has duplicate keys or bad power'),

  // consensus driver (node/consensus)
  ERR_CONSENSUS_STATE_CORRUPT: e('consensus', 'corrupt', 'the signer record, own-message log or decided log is damaged (never silently reset)'),
  ERR_CONSENSUS_STOPPED: e('consensus', 'failure', 'consensus was stopped before the submitted ops were decided'),
  ERR_MEMPOOL_FULL: e('consensus', 'failure', 'the pending-ops pool is at its bound'),
  ERR_PATTERN_REJECTED: e('consensus', 'failure', 'the cluster decided against the submitted ops (a conflicting op won, or they do not apply)'),
  ERR_SUBMIT_TIMEOUT: e('consensus', 'failure', 'the submitted ops were not decided within the timeout (they may still be decided later)'),
  ERR_SYNC_BAD_FRAME: e('consensus', 'failure', 'a catch-up reply is oversize or not decodable'),
  ERR_SYNC_NO_REPLY: e('consensus', 'failure', 'a catch-up stream closed without a reply'),
  ERR_SYNC_TIMEOUT: e('consensus', 'failure', 'a catch-up request got no reply within its deadline'),

  // routing (pure policy)
  ERR_ROUTING_INPUT: e('routing', 'failure', 'the routing policy was given an invalid candidate or request'),
  ERR_ROUTING_PARAMS: e('routing', 'failure', 'routing parameters out of range (weights, floors, ceilings, RTT smoothing)'),

  // runtime: data directory, config, invites, node
  ERR_ALREADY_MEMBER: e('runtime', 'failure', 'approve of a peer that is already a member or whose member.add is already decided'),
  ERR_CLUSTER_CORRUPT: e('runtime', 'corrupt', 'the cluster file is not valid'),
  ERR_CLUSTER_MISSING: e('runtime', 'dataDir', 'the node is in no cluster (no cluster file)'),
  ERR_CONFIG_INVALID: e('runtime', 'corrupt', 'the config parses but a field is invalid (the error names it)'),
  ERR_CONFIG_MISSING: e('runtime', 'dataDir', 'the config file is missing'),
  ERR_CONFIG_PARSE: e('runtime', 'corrupt', 'the config file is not valid JSON'),
  ERR_DATADIR_EXISTS: e('runtime', 'failure', 'init into a data directory that is already initialised'),
  ERR_DATADIR_LOCKED: e('runtime', 'locked', 'another running node holds the data directory lock'),
  ERR_DATADIR_MISSING: e('runtime', 'dataDir', 'the data directory does not exist'),
  ERR_DATADIR_NOT_INITIALISED: e('runtime', 'dataDir', 'the data directory exists but was never initialised (fednode init)'),
  ERR_DATADIR_PERMISSIONS: e('runtime', 'corrupt', 'the data directory or a secret in it is readable by others'),
  ERR_INVITE_BAD_SIGNATURE: e('runtime', 'failure', 'a join was refused: the invite signature does not verify'),
  ERR_INVITE_EXPIRED: e('runtime', 'failure', 'a join was refused: the invite has expired'),
  ERR_INVITE_INVALID: e('runtime', 'failure', 'a join was refused: the invite is malformed or for another cluster'),
  ERR_INVITE_MISMATCH: e('p2p', 'failure', 'a joiner presented an invite issued for another key'),
  ERR_INVITE_NOT_MEMBER: e('runtime', 'failure', 'a join was refused: the invite was issued by a node that is not a member'),
  ERR_INVITE_USED: e('runtime', 'failure', 'a join was refused: the one-time invite was already used (decided by consensus)'),
  ERR_JOINS_FULL: e('runtime', 'failure', 'the pending-joins list (approve mode) is full'),
  ERR_JOIN_INVALID: e('runtime', 'failure', 'a join request is malformed'),
  ERR_NO_ADDRESSES: e('runtime', 'failure', 'the node has no address to put in an invite'),
  ERR_NODE_NOT_RUNNING: e('runtime', 'notRunning', 'no node is running on this data directory (control API unreachable)'),
  ERR_NOT_AVAILABLE: e('runtime', 'failure', 'the part asked for is not started yet or not configured on this node'),
  ERR_NOT_MEMBER: e('runtime', 'failure', 'this node is not (yet) a decided member, so the members would refuse what was asked'),
  ERR_NO_SUCH_PATTERN: e('runtime', 'failure', 'no decided pattern has that name'),
  ERR_SWARM_KEY_CORRUPT: e('runtime', 'corrupt', 'the swarm (pre-shared) key file is not valid'),
  ERR_TOKEN_BAD_SIGNATURE: e('runtime', 'badToken', 'an invite token signature does not verify'),
  ERR_TOKEN_EXPIRED: e('runtime', 'badToken', 'an invite token has expired'),
  ERR_TOKEN_INVALID: e('runtime', 'badToken', 'an invite token is not valid for this cluster or node'),
  ERR_TOKEN_MALFORMED: e('runtime', 'badToken', 'an invite token is not decodable'),
  ERR_TOKEN_WRONG_KIND: e('runtime', 'badToken', 'a token of another kind was given where an invite was expected'),

  // control API (client errors and the codes of its error bodies)
  ERR_BAD_REQUEST: e('control', 'failure', 'a control request body or query is malformed (data.field names it)'),
  ERR_BODY: e('control', 'failure', 'a control request body is oversize or could not be read'),
  ERR_CONTROL_CUT: e('control', 'noAnswer', 'the control connection closed before a whole answer arrived'),
  ERR_CONTROL_HTTP: e('control', 'failure', 'the control API answered an error status (data.code carries the node\'s code)'),
  ERR_CONTROL_OVERSIZE: e('control', 'noAnswer', 'the control API answer exceeded its bound'),
  ERR_CONTROL_TIMEOUT: e('control', 'noAnswer', 'no whole control answer within the timeout'),
  ERR_CONTROL_UNAUTHORIZED: e('control', 'failure', 'the control request lacks the data directory\'s control token'),
  ERR_INTERNAL: e('control', 'failure', 'an unexpected error inside the node or CLI (a bug: please report it)'),
  ERR_JSON: e('control', 'failure', 'a control request body is not JSON'),
  ERR_METHOD: e('control', 'failure', 'the HTTP method is not allowed on that control endpoint'),
  ERR_NOT_FOUND: e('control', 'failure', 'no control endpoint at that path'),
  ERR_REMOTE_CODE: e('control', 'failure', 'the node answered with a code this CLI does not know (a newer node?); data.code carries it'),

  // store and integrity
  ERR_MANIFEST_CORRUPT: e('store', 'corrupt', 'the store manifest is damaged or disagrees with the store'),
  ERR_REPAIR_FAILED: e('store', 'failure', 'repair from peers could not rebuild the store'),
  ERR_SIGNER_INTEGRITY: e('store', 'corrupt', 'the signer record is behind the decided log (a lost write): signing is refused'),
  ERR_STORE_CORRUPT: e('store', 'corrupt', 'the LevelDB store is damaged'),
  ERR_STORE_CORRUPT_RUNNING: e('store', 'corrupt', 'the store was found damaged while the node ran'),
  ERR_STORE_INTEGRITY: e('store', 'corrupt', 'a stored record fails its integrity check'),
  ERR_STORE_LOCKED: e('store', 'locked', 'another process holds the LevelDB lock'),
  ERR_STORE_OPEN: e('store', 'failure', 'the store could not be opened (I/O error)'),

  // p2p
  ERR_ADDRBOOK_CORRUPT: e('p2p', 'corrupt', 'the address book file is damaged'),
  ERR_DIRECT_CLOSED: e('p2p', 'failure', 'a direct channel closed'),
  ERR_DIRECT_REFUSED: e('p2p', 'failure', 'the peer refused a direct channel (not a member)'),
  ERR_DIRECT_REJECTED: e('p2p', 'failure', 'a direct-channel frame was rejected (oversize, bad signature)'),
  ERR_HOST_NOT_STARTED: e('p2p', 'failure', 'the libp2p host is not started'),
  ERR_MEMBERS_FULL: e('p2p', 'failure', 'the member list is at its bound'),
  ERR_OPTIONS: e('p2p', 'failure', 'bad p2p options (listen or bootstrap address, limits)'),
  ERR_PEER_UNRESPONSIVE: e('p2p', 'failure', 'a peer did not answer within its deadline'),
  ERR_PSK_INVALID: e('p2p', 'corrupt', 'the pre-shared key is not valid'),
  ERR_PUBLISH_OVERSIZE: e('p2p', 'failure', 'a gossip message exceeds the topic\'s size bound'),
  ERR_TOPIC_UNKNOWN: e('p2p', 'failure', 'publish or subscribe on a topic the node does not know'),

  // adverts
  ERR_ADVERT_CONFIG: e('adverts', 'failure', 'advert or energy-accounting options out of range'),
  ERR_ADVERT_INVALID: e('adverts', 'failure', 'an advert body fails validation (the field is named)'),

  // backends
  ERR_BACKEND_ABORTED: e('backends', 'failure', 'the request to the backend was aborted (client gone, deadline)'),
  ERR_BACKEND_BUSY: e('backends', 'failure', 'the backend is at its capacity and its queue is full'),
  ERR_BACKEND_CONFIG: e('backends', 'failure', 'a backend entry in the config is invalid'),
  ERR_BACKEND_HTTP: e('backends', 'failure', 'the backend answered an HTTP error'),
  ERR_BACKEND_MODEL_NOT_FOUND: e('backends', 'failure', 'the backend does not serve the model'),
  ERR_BACKEND_OVERSIZE: e('backends', 'failure', 'the backend answer exceeded its bound'),
  ERR_BACKEND_PROTOCOL: e('backends', 'failure', 'the backend answer is not what its API defines'),
  ERR_BACKEND_TIMEOUT: e('backends', 'failure', 'the backend did not answer within its deadline'),
  ERR_BACKEND_UNREACHABLE: e('backends', 'failure', 'the backend cannot be reached'),
  ERR_BACKEND_UNSUPPORTED: e('backends', 'failure', 'the backend kind cannot honour a request parameter (data.param names it)'),
  ERR_GGUF_INVALID: e('backends', 'failure', 'a GGUF model file is malformed'),
  ERR_UPSTREAM_CLIENT: e('backends', 'failure', 'the backend refused the request as the client\'s error (4xx), passed on as such'),

  // inference: routing and forwarding
  ERR_ABORTED: e('infer', 'failure', 'the request was aborted by its client'),
  ERR_ALL_CANDIDATES_FAILED: e('infer', 'failure', 'every candidate serving the model failed before its first token'),
  ERR_BACKEND: e('infer', 'failure', 'the serving node\'s backend failed'),
  ERR_BUSY: e('infer', 'failure', 'every candidate is busy, or this node routes its maximum (HTTP 429)'),
  ERR_DEADLINE: e('infer', 'failure', 'the request deadline passed'),
  ERR_FORWARD_PROTOCOL: e('infer', 'failure', 'a forward stream frame is malformed, oversize or out of order'),
  ERR_FORWARD_REFUSED: e('infer', 'failure', 'the peer refused a forwarded request (not a member, not serving the model)'),
  ERR_MODEL_NOT_FOUND: e('infer', 'failure', 'no member serves the model or an alias of it'),
  ERR_UNAVAILABLE: e('infer', 'failure', 'no candidate serving the model could be reached'),
  ERR_UNSUPPORTED_PARAM: e('infer', 'failure', 'a request parameter is not supported (data.param names it): never silently dropped'),
  ERR_UPSTREAM_MID_STREAM: e('infer', 'failure', 'the serving backend failed after the first token; the stream ends with an error'),

  // OpenAI/Ollama API server and client
  ERR_API_KEY_REQUIRED: e('api', 'failure', 'the API listens beyond loopback without an API key'),
  ERR_API_LISTEN: e('api', 'failure', 'the API could not listen on its address'),
  ERR_API_OPTIONS: e('api', 'failure', 'API options out of range'),
  ERR_CLIENT_HTTP: e('api', 'failure', 'the node API answered an error status'),
  ERR_CLIENT_PROTOCOL: e('api', 'failure', 'the node API answer is not what the API defines'),
  ERR_CLIENT_STREAM: e('api', 'failure', 'the node API stream ended with an error or cut'),
  ERR_CLIENT_UNREACHABLE: e('api', 'failure', 'the node API cannot be reached'),

  // metrics and dashboard
  ERR_DASHBOARD_ASSETS: e('dashboard', 'failure', 'the dashboard assets are missing from the install'),
  ERR_METRICS_ADDR: e('metrics', 'failure', 'the metrics listen address is invalid'),
  ERR_METRICS_LISTEN: e('metrics', 'failure', 'the metrics endpoint could not listen'),

  // simnet
  ERR_SIMNET_CORE: e('simnet', 'failure', 'the routing policy under simulation returned no candidate (a bug in the policy)'),
  ERR_SIMNET_LIMIT: e('simnet', 'failure', 'a simulated run exceeded its event or time bound'),
  ERR_SIMNET_OPTIONS: e('simnet', 'usage', 'simnet options out of range or in a bad combination'),
  ERR_SIMNET_SYNC_TIMEOUT: e('simnet', 'failure', 'a simulated catch-up request got no reply'),

  // cli
  ERR_USAGE: e('cli', 'usage', 'unknown flag, missing argument or bad value'),
} as const satisfies Record<`ERR_${string}`, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}
