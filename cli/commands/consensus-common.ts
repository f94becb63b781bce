/**
 * Shared by `propose`, `patterns`, `log`, `approve` and `status`: turning command-line
 * arguments into the JSON form of pattern ops (node/runtime/consensus-ops.ts, which the node
 * checks again), and the node's error codes back into typed errors (exit code 1, message from
 * the node: "rejected: op 0 (pattern): ...").
 */
import { FednodeError } from '../../base/errors.js';
import { isErrorCode } from '../../base/error-codes.js';
import { UsageError } from '../args.js';
import type { ParsedArgs } from '../args.js';
import type { CommitReceipt } from '../../node/consensus/api.js';
import type { OpJson } from '../../node/runtime/consensus-ops.js';
import { isRuntimeError } from '../../node/runtime/errors.js';

/**
 * An error the node answered with (its code kept, e.g. ERR_PATTERN_REJECTED, ERR_SUBMIT_TIMEOUT);
 * a code this CLI's registry does not list (a newer node) is ERR_REMOTE_CODE with data.code.
 */
export class NodeAnswerError extends FednodeError {
  constructor(code: string, message: string, data: Record<string, unknown>) {
    super(isErrorCode(code) ? code : 'ERR_REMOTE_CODE', message, isErrorCode(code) ? data : { ...data, code });
    this.name = 'NodeAnswerError';
  }
}

/** Run a control call; an HTTP error with a code becomes a NodeAnswerError carrying that code. */
export async function answered<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (isRuntimeError(e, 'ERR_CONTROL_HTTP') && typeof e.data['code'] === 'string') {
      throw new NodeAnswerError(e.data['code'], e.message.replace(/^control API \w+ \S+: /, ''), { status: e.data['status'] });
    }
    throw e;
  }
}

const PEER_RE = /^[1-9A-HJ-NP-Za-km-z]{32,128}$/; // base58btc: the node decodes and checks it fully

function peerArg(v: string | undefined, kind: string): string {
  if (v === undefined) throw new UsageError(`propose ${kind} needs <peer> (a peer id such as 12D3KooW...)`, 'propose');
  if (!PEER_RE.test(v)) throw new UsageError(`'${v}' is not a peer id (expected base58 such as 12D3KooW...)`, 'propose');
  return v;
}

function numberArg(raw: string, what: string): number {
  if (!/^-?\d+(\.\d+)?$/.test(raw.trim())) throw new UsageError(`${what} must be a number, got '${raw}'`, 'propose');
  return Number(raw);
}

/** `k=v` pairs (repeatable flag or positionals) to a metric map; usage error naming the bad pair. */
export function metricPairs(list: readonly string[], what: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of list) {
    const m = /^([^=\s]+)=(.+)$/.exec(item);
    if (m === null) throw new UsageError(`${what} expects name=number pairs, got '${item}'`, 'propose');
    const [, k, v] = m as unknown as [string, string, string];
    if (k in out) throw new UsageError(`${what}: '${k}' given twice`, 'propose');
    out[k] = numberArg(v, `${what} ${k}`);
  }
  return out;
}

export interface ProposeInputs {
  /** Current route policy, to fill fields a `route.policy` proposal leaves out. */
  readonly currentPolicy?: { weights: Record<string, number>; batteryFloorPct: number; temperatureCeilingC: number };
  /** Reads `--file` (injected so the parser stays testable). */
  readonly readFile?: (path: string) => string;
}

/** An op as the CLI sends it: a pattern's contentHash is left to the node, which computes it. */
export type OpInput = Exclude<OpJson, { kind: 'pattern' }> | (Omit<Extract<OpJson, { kind: 'pattern' }>, 'contentHash'> & { contentHash?: string });

export const PROPOSE_KINDS = ['member.add', 'member.remove', 'route.policy', 'model.alias', 'quality.gates', 'pattern'] as const;

/** `fednode propose <kind> ...` arguments to one op in JSON form. Throws UsageError (exit 2). */
export function opFromArgs(args: ParsedArgs, inputs: ProposeInputs = {}): OpInput {
  const [kind, ...rest] = args.positionals;
  const f = args.flags;
  const str = (n: string): string | undefined => (typeof f[n] === 'string' ? (f[n]) : undefined);
  const list = (n: string): string[] => (Array.isArray(f[n]) ? (f[n]) : []);
  const allowOnly = (allowed: readonly string[]): void => {
    const used = ['name', 'power', 'weight', 'battery-floor', 'temp-ceiling', 'remove', 'content', 'file', 'tag', 'quality'].filter((n) => f[n] !== undefined);
    const bad = used.filter((n) => !allowed.includes(n));
    if (bad.length > 0) throw new UsageError(`--${bad[0] ?? ''} does not apply to propose ${kind ?? ''}`, 'propose');
  };
  const noMore = (n: number): void => {
    if (rest.length > n) throw new UsageError(`unexpected argument '${rest[n] ?? ''}' for propose ${kind ?? ''}`, 'propose');
  };
  switch (kind) {
    case 'member.add': {
      allowOnly(['name', 'power']);
      noMore(1);
      const power = f['power'];
      return { kind, peer: peerArg(rest[0], kind), power: typeof power === 'number' ? power : 1, name: str('name') ?? '' };
    }
    case 'member.remove':
      allowOnly([]);
      noMore(1);
      return { kind, peer: peerArg(rest[0], kind) };
    case 'route.policy': {
      allowOnly(['weight', 'battery-floor', 'temp-ceiling']);
      noMore(0);
      const weights = metricPairs(list('weight'), '--weight');
      const floor = str('battery-floor');
      const ceiling = str('temp-ceiling');
      if (Object.keys(weights).length === 0 && floor === undefined && ceiling === undefined) {
        throw new UsageError('propose route.policy needs at least one of --weight k=v, --battery-floor <pct>, --temp-ceiling <C>', 'propose');
      }
      const cur = inputs.currentPolicy;
      if (cur === undefined && (Object.keys(weights).length === 0 || floor === undefined || ceiling === undefined)) {
        throw new UsageError('propose route.policy: the current policy is unknown, so give --weight, --battery-floor and --temp-ceiling', 'propose');
      }
      return {
        kind,
        weights: Object.keys(weights).length > 0 ? weights : { ...(cur?.weights ?? {}) },
        batteryFloorPct: floor !== undefined ? numberArg(floor, '--battery-floor') : (cur?.batteryFloorPct ?? 0),
        temperatureCeilingC: ceiling !== undefined ? numberArg(ceiling, '--temp-ceiling') : (cur?.temperatureCeilingC ?? 0),
      };
    }
    case 'model.alias': {
      allowOnly(['remove']);
      const alias = rest[0];
      if (alias === undefined) throw new UsageError('propose model.alias needs <alias> and then <model> or --remove', 'propose');
      if (f['remove'] === true) {
        noMore(1);
        return { kind, alias, model: null };
      }
      noMore(2);
      const model = rest[1];
      if (model === undefined) throw new UsageError(`propose model.alias ${alias} needs the <model> it stands for (or --remove)`, 'propose');
      return { kind, alias, model };
    }
    case 'quality.gates':
      allowOnly([]);
      return { kind, gates: metricPairs(rest, 'quality.gates') };
    case 'pattern': {
      allowOnly(['name', 'content', 'file', 'tag', 'quality']);
      noMore(0);
      const name = str('name');
      if (name === undefined || name === '') throw new UsageError('propose pattern needs --name <name>', 'propose');
      const content = str('content');
      const file = str('file');
      if ((content === undefined) === (file === undefined)) throw new UsageError('propose pattern needs exactly one of --content <text> or --file <path>', 'propose');
      let text = content ?? '';
      if (file !== undefined) {
        if (inputs.readFile === undefined) throw new UsageError('--file cannot be read here', 'propose');
        try {
          text = inputs.readFile(file);
        } catch (e) {
          throw new UsageError(`--file ${file}: ${e instanceof Error ? e.message : String(e)}`, 'propose');
        }
      }
      const q = list('quality');
      return { kind, name, content: text, tags: list('tag'), quality: q.length > 0 ? metricPairs(q, '--quality') : null };
    }
    case undefined:
      throw new UsageError(`propose needs a kind: ${PROPOSE_KINDS.join(', ')}`, 'propose');
    default:
      throw new UsageError(`unknown pattern kind '${kind}' (kinds: ${PROPOSE_KINDS.join(', ')})`, 'propose');
  }
}

export function certificateSummary(r: CommitReceipt): string {
  return `${r.signers.length} signer(s), power ${r.power}/${r.totalPower} (quorum > ${Math.floor((2 * r.totalPower) / 3)})`;
}
