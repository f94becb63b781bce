/**
 * JSON forms of pattern ops, registry and decided entries for the control API and the CLI.
 * On the wire (consensus/patterns.ts) members are 32-byte public keys and hashes are bytes;
 * in JSON a member is its libp2p peer id and bytes are lower-case hex. Parsing is strict:
 * every malformed body is a RuntimeError ERR_BAD_REQUEST whose data names the field
 * (`ops[2].contentHash`), so neither the HTTP client nor the operator has to guess.
 */
import { peerIdFromString } from '@libp2p/peer-id';
import { peerIdFromPublicKey } from '../../crypto/keys.js';
import { checkOp, contentHashOf, MAX_BATCH_OPS, MAX_TAGS, PATTERN_KINDS } from '../../consensus/patterns.js';
import type { PatternKind, PatternOp } from '../../consensus/patterns.js';
import type { Registry } from '../../consensus/registry.js';
import { ConsensusError } from '../../consensus/types.js';
import type { DecidedEntry } from '../consensus/api.js';
import type { ModelEntry } from '../forward/router.js';
import { RuntimeError } from './errors.js';

/** JSON form of one op (what `POST /consensus/propose` takes and `GET /consensus/log` returns). */
export type OpJson =
  /** `invite`: hex digest (64 characters) of the one-time invite the add consumes; absent or null for an operator's add. */
  | { kind: 'member.add'; peer: string; power: number; name: string; invite?: string | null }
  | { kind: 'member.remove'; peer: string }
  | { kind: 'route.policy'; weights: Record<string, number>; batteryFloorPct: number; temperatureCeilingC: number }
  | { kind: 'model.alias'; alias: string; model: string | null }
  | { kind: 'quality.gates'; gates: Record<string, number> }
  | { kind: 'pattern'; name: string; content: string; contentHash: string; tags: string[]; quality: Record<string, number> | null };

/** Peer ids are ~52 characters; 128 bounds a pasted mistake before it reaches the multibase decoder. */
const PEER_ID_MAX_CHARS = 128;

export function badRequest(field: string, message: string): RuntimeError {
  return new RuntimeError('ERR_BAD_REQUEST', `${field}: ${message}`, { field });
}

/** The 32-byte Ed25519 public key of a peer id (`12D3Koo...`); ERR_BAD_REQUEST naming `field` otherwise. */
export function publicKeyOfPeerId(peer: unknown, field: string): Uint8Array {
  if (typeof peer !== 'string' || peer.length === 0 || peer.length > PEER_ID_MAX_CHARS) throw badRequest(field, 'must be a libp2p peer id (12D3Koo...)');
  let id;
  try {
    id = peerIdFromString(peer);
  } catch {
    throw badRequest(field, `'${peer.slice(0, 60)}' is not a peer id`);
  }
  if (id.type !== 'Ed25519') throw badRequest(field, `peer id must be an Ed25519 one (fednode node ids start with 12D3Koo), got ${id.type}`);
  return id.publicKey.raw;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function onlyKeys(rec: Record<string, unknown>, allowed: readonly string[], field: string): void {
  for (const k of Object.keys(rec)) if (!allowed.includes(k)) throw badRequest(`${field}.${k}`, `unknown field (allowed: ${allowed.join(', ')})`);
}

function hexBytes(v: unknown, field: string, bytes: number): Uint8Array {
  if (typeof v !== 'string' || !new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`).test(v)) throw badRequest(field, `must be ${bytes * 2} hex characters`);
  return new Uint8Array(Buffer.from(v, 'hex'));
}

/**
 * One JSON op to a PatternOp, statically checked (consensus/patterns.ts checkOp). A pattern's
 * content hash is computed when absent and must match when given. Errors name the field.
 */
export function opFromJson(raw: unknown, field = 'op'): PatternOp {
  if (!isRecord(raw)) throw badRequest(field, 'must be a JSON object with a "kind"');
  const kind = raw['kind'];
  if (typeof kind !== 'string' || !(PATTERN_KINDS as readonly string[]).includes(kind)) {
    throw badRequest(`${field}.kind`, `must be one of ${PATTERN_KINDS.join(', ')}`);
  }
  let candidate: Record<string, unknown>;
  switch (kind as PatternKind) {
    case 'member.add':
      onlyKeys(raw, ['kind', 'peer', 'power', 'name', 'invite'], field);
      candidate = { kind, publicKey: publicKeyOfPeerId(raw['peer'], `${field}.peer`), power: raw['power'] ?? 1, name: raw['name'] ?? '' };
      // null and absent both mean "no invite": the op then leaves the field out (its one encoding).
      if (raw['invite'] !== undefined && raw['invite'] !== null) candidate['invite'] = hexBytes(raw['invite'], `${field}.invite`, 32);
      break;
    case 'member.remove':
      onlyKeys(raw, ['kind', 'peer'], field);
      candidate = { kind, publicKey: publicKeyOfPeerId(raw['peer'], `${field}.peer`) };
      break;
    case 'route.policy':
      onlyKeys(raw, ['kind', 'weights', 'batteryFloorPct', 'temperatureCeilingC'], field);
      candidate = { kind, weights: raw['weights'], batteryFloorPct: raw['batteryFloorPct'], temperatureCeilingC: raw['temperatureCeilingC'] };
      break;
    case 'model.alias':
      onlyKeys(raw, ['kind', 'alias', 'model'], field);
      candidate = { kind, alias: raw['alias'], model: raw['model'] === undefined ? null : raw['model'] };
      break;
    case 'quality.gates':
      onlyKeys(raw, ['kind', 'gates'], field);
      candidate = { kind, gates: raw['gates'] };
      break;
    case 'pattern': {
      onlyKeys(raw, ['kind', 'name', 'content', 'contentHash', 'tags', 'quality'], field);
      const content = raw['content'];
      if (typeof content !== 'string') throw badRequest(`${field}.content`, 'must be a string');
      const computed = contentHashOf(content);
      let contentHash = computed;
      if (raw['contentHash'] !== undefined) {
        contentHash = hexBytes(raw['contentHash'], `${field}.contentHash`, 32);
        if (Buffer.compare(Buffer.from(contentHash), Buffer.from(computed)) !== 0) {
          throw badRequest(`${field}.contentHash`, `does not match the BLAKE3 of the content (${Buffer.from(computed).toString('hex')})`);
        }
      }
      const tags = raw['tags'] ?? [];
      if (!Array.isArray(tags) || tags.length > MAX_TAGS) throw badRequest(`${field}.tags`, `must be a list of at most ${MAX_TAGS} tags`);
      candidate = { kind, name: raw['name'], content, contentHash, tags, quality: raw['quality'] ?? null };
      break;
    }
  }
  try {
    return checkOp(candidate);
  } catch (e) {
    if (e instanceof ConsensusError) {
      const what = e.data['what'];
      const head = typeof what === 'string' ? what.split(/[ .]/)[0] ?? '' : '';
      const sub = head === 'tag' ? 'tags' : head;
      throw badRequest(sub !== '' && sub in candidate ? `${field}.${sub}` : field, e.message);
    }
    throw e;
  }
}

/** `{ops: [...]}` body to PatternOps (1..MAX_BATCH_OPS). */
export function opsFromJson(raw: unknown, field = 'ops'): PatternOp[] {
  if (!Array.isArray(raw)) throw badRequest(field, 'must be a list of ops');
  if (raw.length === 0 || raw.length > MAX_BATCH_OPS) throw badRequest(field, `must hold 1-${MAX_BATCH_OPS} ops, got ${raw.length}`);
  return raw.map((op, i) => opFromJson(op, `${field}[${i}]`));
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export function opToJson(op: PatternOp): OpJson {
  switch (op.kind) {
    case 'member.add':
      return { kind: op.kind, peer: peerIdFromPublicKey(op.publicKey), power: op.power, name: op.name, ...(op.invite !== undefined ? { invite: hex(op.invite) } : {}) };
    case 'member.remove':
      return { kind: op.kind, peer: peerIdFromPublicKey(op.publicKey) };
    case 'route.policy':
      return { kind: op.kind, weights: { ...op.weights }, batteryFloorPct: op.batteryFloorPct, temperatureCeilingC: op.temperatureCeilingC };
    case 'model.alias':
      return { kind: op.kind, alias: op.alias, model: op.model };
    case 'quality.gates':
      return { kind: op.kind, gates: { ...op.gates } };
    case 'pattern':
      return { kind: op.kind, name: op.name, content: op.content, contentHash: hex(op.contentHash), tags: [...op.tags], quality: op.quality === null ? null : { ...op.quality } };
  }
}

/** One line per op for humans (`fednode log`). */
export function opSummary(op: OpJson): string {
  switch (op.kind) {
    case 'member.add':
      return `member.add ${op.peer}${op.name !== '' ? ` (${op.name})` : ''} power ${op.power}${typeof op.invite === 'string' ? ` invite ${op.invite.slice(0, 12)}…` : ''}`;
    case 'member.remove':
      return `member.remove ${op.peer}`;
    case 'route.policy':
      return `route.policy weights ${Object.entries(op.weights).map(([k, v]) => `${k}=${v}`).join(',')} battery-floor ${op.batteryFloorPct}% temp-ceiling ${op.temperatureCeilingC}C`;
    case 'model.alias':
      return `model.alias ${op.alias} -> ${op.model ?? '(removed)'}`;
    case 'quality.gates':
      return `quality.gates ${Object.entries(op.gates).map(([k, v]) => `${k}>=${v}`).join(',') || '(none)'}`;
    case 'pattern':
      return `pattern ${op.name} (${op.content.length} chars, ${op.contentHash.slice(0, 12)}…)${op.tags.length > 0 ? ` tags ${op.tags.join(',')}` : ''}`;
  }
}

export interface RegistryJson {
  height: number;
  members: Array<{ peer: string; publicKey: string; power: number; name: string }>;
  membersSince: number;
  pending: Array<{ effectiveHeight: number; op: OpJson }>;
  routePolicy: { weights: Record<string, number>; batteryFloorPct: number; temperatureCeilingC: number };
  aliases: Array<{ alias: string; model: string }>;
  qualityGates: Record<string, number>;
  patterns: PatternJson[];
  /** How many one-time invite digests the registry holds as used (at most MAX_USED_INVITES, consensus/registry.ts). */
  usedInvites: number;
}

export interface PatternJson {
  name: string;
  /** The content, cut to the listing's bound when `truncated`; `contentChars` is its full length. */
  content: string;
  contentChars: number;
  truncated: boolean;
  contentHash: string;
  tags: string[];
  quality: Record<string, number> | null;
  version: number;
  height: number;
}

export function patternToJson(p: Registry['patterns'][number], contentMaxChars: number = Number.MAX_SAFE_INTEGER): PatternJson {
  const truncated = p.content.length > contentMaxChars;
  return {
    name: p.name,
    content: truncated ? p.content.slice(0, contentMaxChars) : p.content,
    contentChars: p.content.length,
    truncated,
    contentHash: hex(p.contentHash),
    tags: [...p.tags],
    quality: p.quality === null ? null : { ...p.quality },
    version: p.version,
    height: p.height,
  };
}

/** The registry in JSON form; pattern contents cut to `contentMaxChars` (a listing of 4,096 x 64 KiB would be 256 MiB). */
export function registryToJson(r: Registry, contentMaxChars: number = Number.MAX_SAFE_INTEGER): RegistryJson {
  return {
    height: r.height,
    members: r.members.map((m) => ({ peer: peerIdFromPublicKey(m.publicKey), publicKey: hex(m.publicKey), power: m.power, name: m.name })),
    membersSince: r.membersSince,
    pending: r.pending.map((p) => ({ effectiveHeight: p.effectiveHeight, op: opToJson(p.op) })),
    routePolicy: { weights: { ...r.routePolicy.weights }, batteryFloorPct: r.routePolicy.batteryFloorPct, temperatureCeilingC: r.routePolicy.temperatureCeilingC },
    aliases: r.aliases.map(([alias, model]) => ({ alias, model })),
    qualityGates: { ...r.qualityGates },
    patterns: r.patterns.map((p) => patternToJson(p, contentMaxChars)),
    usedInvites: r.usedInvites.length,
  };
}

export interface EntryJson {
  height: number;
  round: number;
  valueId: string;
  registryHash: string;
  decidedMs: number;
  ops: OpJson[];
  /** Peer ids of the precommit signers in the commit certificate. */
  signers: string[];
}

export function entryToJson(e: DecidedEntry): EntryJson {
  return {
    height: e.height,
    round: e.round,
    valueId: e.valueId,
    registryHash: e.registryHash,
    decidedMs: e.decidedMs,
    ops: e.ops.map(opToJson),
    signers: e.certificate.precommits.map((p) => peerIdFromPublicKey(p.signer)),
  };
}

/** A propose-time refusal (a rule on state that is not consensus state), in the validity verdict's shape. */
export interface ProposeProblem {
  readonly reason: string;
  readonly index: number;
}

/**
 * An alias may not shadow a model a live member serves now (the alias would win and hide it on
 * every node). Served models are not consensus state, so this is checked at the proposing node
 * only, against what it sees; the error names the model and the nodes serving it.
 */
export function aliasShadowProblem(ops: readonly PatternOp[], served: readonly ModelEntry[]): ProposeProblem | null {
  const byId = new Map(served.filter((m) => m.aliasOf === undefined).map((m) => [m.id, m]));
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    if (op?.kind !== 'model.alias' || op.model === null) continue;
    const m = byId.get(op.alias);
    if (m !== undefined) {
      return { index: i, reason: `op ${i} (model.alias): alias '${op.alias}' would shadow the model '${op.alias}' served by ${m.servedBy.join(', ')}; pick another alias name` };
    }
  }
  return null;
}
