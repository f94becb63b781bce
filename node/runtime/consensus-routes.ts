/**
 * Control API routes of consensus (HTTP on loopback with the control token, see
 * node/control/server.ts):
 *   POST /consensus/propose  {ops: [...], waitMs?}  -> 200 receipt | 400 ERR_BAD_REQUEST {field}
 *        | 400 ERR_PATTERN_REJECTED {reason, index} | 504 ERR_SUBMIT_TIMEOUT
 *        | 503 ERR_MEMPOOL_FULL / ERR_NOT_MEMBER / ERR_CONSENSUS_STOPPED
 *   GET  /consensus/status                         -> driver status + admission
 *   GET  /consensus/patterns                       -> the registry (JSON form, contents cut to 1 KiB) and its hash
 *   GET  /consensus/pattern?name=                  -> one pattern with its whole content | 404
 *   GET  /consensus/log?from=&limit=               -> decided heights (limit <= LOG_LIMIT_MAX)
 *   GET  /consensus/joins                          -> joins waiting for approval
 *   POST /consensus/approve  {peer, waitMs?}       -> 200 receipt (member.add committed)
 * Ops travel in their JSON form (node/runtime/consensus-ops.ts).
 */
import type { Consensus, ConsensusStatus } from '../consensus/api.js';
import { ConsensusDriverError } from '../consensus/api.js';
import type { ControlRequest, ControlResponse, ControlServer } from '../control/server.js';
import type { Admission, AdmissionStatus } from './admission.js';
import type { EntryJson, ProposeProblem, RegistryJson } from './consensus-ops.js';
import type { PatternOp } from '../../consensus/patterns.js';
import { badRequest, entryToJson, opsFromJson, patternToJson, registryToJson } from './consensus-ops.js';

/** Default wait for a commit; LAN commits take milliseconds, a round change a few hundred. */
export const WAIT_MS_DEFAULT = 30_000;
/** Longest a control request may hold its connection waiting for a commit. */
export const WAIT_MS_MAX = 600_000;
/** Decided heights per `log` request (the reply is also cut at LOG_REPLY_MAX_BYTES). */
export const LOG_LIMIT_MAX = 1000;
/** A height carries up to 192 KiB of ops; 8 MiB bounds one reply (page on with `from`). */
export const LOG_REPLY_MAX_BYTES = 8 * 1024 * 1024;
export const LOG_LIMIT_DEFAULT = 20;
/** Content characters per pattern in the registry listing; the whole pattern is GET /consensus/pattern?name=. */
export const LISTING_CONTENT_MAX_CHARS = 1024;

export interface ProposeBody {
  ops: unknown[];
  waitMs?: number;
}

export interface ConsensusStatusJson extends ConsensusStatus {
  readonly admission: AdmissionStatus;
}

export interface PatternsJson {
  readonly height: number;
  readonly registryHash: string;
  readonly registry: RegistryJson;
}

export interface LogJson {
  readonly decidedHeight: number;
  readonly entries: EntryJson[];
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function bodyRecord(body: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (!isRecord(body)) throw badRequest('body', 'must be a JSON object');
  for (const k of Object.keys(body)) if (!allowed.includes(k)) throw badRequest(k, `unknown field (allowed: ${allowed.join(', ')})`);
  return body;
}

function waitMsOf(v: unknown): number {
  if (v === undefined) return WAIT_MS_DEFAULT;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0 || v > WAIT_MS_MAX) throw badRequest('waitMs', `must be an integer in (0, ${WAIT_MS_MAX}]`);
  return v;
}

function intParam(q: URLSearchParams, name: string, min: number, max: number): number | null {
  const raw = q.get(name);
  if (raw === null || raw === '') return null;
  if (!/^\d+$/.test(raw)) throw badRequest(name, `must be an integer in [${min}, ${max}], got '${raw.slice(0, 40)}'`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw badRequest(name, `must be an integer in [${min}, ${max}], got ${raw.slice(0, 40)}`);
  return n;
}

/** HTTP status of each driver error: the caller's fault (400), not now (503), too slow (504). */
export function statusForDriverError(e: ConsensusDriverError): number {
  switch (e.code) {
    case 'ERR_PATTERN_REJECTED':
      return 400;
    case 'ERR_SUBMIT_TIMEOUT':
      return 504;
    case 'ERR_MEMPOOL_FULL':
    case 'ERR_NOT_MEMBER':
    case 'ERR_CONSENSUS_STOPPED':
      return 503;
    case 'ERR_CONSENSUS_STATE_CORRUPT':
      return 500;
  }
}

/** Driver errors become their own status and `{error: {code, message, data}}`; others propagate. */
async function mapDriverErrors(f: () => Promise<ControlResponse>): Promise<ControlResponse> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof ConsensusDriverError) return { status: statusForDriverError(e), body: { error: { code: e.code, message: e.message, data: e.data } } };
    throw e;
  }
}

/**
 * `proposeCheck`: rules on state that is not consensus state, checked at this (the proposing)
 * node after the validity predicate (e.g. an alias shadowing a served model, inference.ts).
 */
export function registerConsensusRoutes(control: ControlServer, c: Consensus, admission: Admission, proposeCheck: (ops: readonly PatternOp[]) => ProposeProblem | null = () => null): void {
  control.route('POST', '/consensus/propose', (req: ControlRequest) =>
    mapDriverErrors(async () => {
      const b = bodyRecord(req.body, ['ops', 'waitMs']);
      const ops = opsFromJson(b['ops']);
      const waitMs = waitMsOf(b['waitMs']);
      const verdict = c.check(ops);
      if (!verdict.ok) throw new ConsensusDriverError('ERR_PATTERN_REJECTED', `rejected: ${verdict.reason}`, { reason: verdict.reason, index: verdict.index });
      const local = proposeCheck(ops);
      if (local !== null) throw new ConsensusDriverError('ERR_PATTERN_REJECTED', `rejected: ${local.reason}`, { reason: local.reason, index: local.index });
      const receipt = await c.submit(ops, { timeoutMs: waitMs, signal: req.signal });
      return { body: receipt };
    }),
  );
  control.route('GET', '/consensus/status', () => ({ body: { ...c.status(), admission: admission.status() } satisfies ConsensusStatusJson }));
  control.route('GET', '/consensus/patterns', () => {
    const reg = c.registry();
    return { body: { height: reg.height, registryHash: c.status().registryHash, registry: registryToJson(reg, LISTING_CONTENT_MAX_CHARS) } satisfies PatternsJson };
  });
  control.route('GET', '/consensus/pattern', (req) => {
    const name = req.query.get('name');
    if (name === null || name === '') throw badRequest('name', 'give the pattern name: /consensus/pattern?name=<name>');
    const p = c.registry().patterns.find((x) => x.name === name);
    if (p === undefined) return { status: 404, body: { error: { code: 'ERR_NO_SUCH_PATTERN', message: `no pattern named '${name.slice(0, 128)}'`, data: { name: name.slice(0, 128) } } } };
    return { body: patternToJson(p) };
  });
  control.route('GET', '/consensus/log', async (req) => {
    const top = c.status().decidedHeight;
    const limit = intParam(req.query, 'limit', 1, LOG_LIMIT_MAX) ?? LOG_LIMIT_DEFAULT;
    const from = intParam(req.query, 'from', 1, Number.MAX_SAFE_INTEGER) ?? Math.max(1, top - limit + 1);
    const out: EntryJson[] = [];
    let bytes = 0;
    for (const e of (await c.entries(from, limit)).slice(0, limit)) {
      const j = entryToJson(e);
      bytes += JSON.stringify(j).length;
      if (out.length > 0 && bytes > LOG_REPLY_MAX_BYTES) break; // at least one entry, so paging always moves on
      out.push(j);
    }
    return { body: { decidedHeight: top, entries: out } satisfies LogJson };
  });
  control.route('GET', '/consensus/joins', () => ({ body: { mode: admission.status().mode, pending: admission.pending() } }));
  control.route('POST', '/consensus/approve', (req) =>
    mapDriverErrors(async () => {
      const b = bodyRecord(req.body, ['peer', 'waitMs']);
      const waitMs = waitMsOf(b['waitMs']);
      const r = await admission.approve(typeof b['peer'] === 'string' ? b['peer'] : '', { timeoutMs: waitMs, signal: req.signal });
      return { body: { ...r.receipt, peer: b['peer'], name: r.name, hadClaim: r.hadClaim } };
    }),
  );
}
