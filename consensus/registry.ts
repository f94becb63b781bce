/**
 * The pattern registry: the replicated state every honest node derives by applying decided
 * batches in height order. Plain data only (so its canonical CBOR, and thus `registryHash`,
 * is the same on every honest node at the same height).
 *
 * Membership: a `member.add` / `member.remove` decided at height H takes effect at H+2
 * (CometBFT's rule): the validator set of H+1 is already fixed when H is decided, so every
 * node agrees on who votes at each height without waiting for the application.
 */
import { encodeCanonical } from '../crypto/cbor.js';
import { blake3 } from '../crypto/blake3.js';
import { makeValidatorSet } from './core.js';
import { keyOf } from './sign-bytes.js';
import { checkPower } from './validator-set.js';
import { toHex } from '../base/hex.js';
import { ConsensusError, type ValidatorSet } from './types.js';
import { decodeBatch, type PatternOp, type RoutePolicy } from './patterns.js';
import { isRouteWeightName, ROUTE_WEIGHT_NAMES } from '../base/route-weights.js';

/** Members (validators): a lab has a few to a few dozen machines; 256 keeps votes per round bounded. */
export const MAX_MEMBERS = 256;
/** Aliases: one per model name variant; 1,024 is far above any lab's model list. */
export const MAX_ALIASES = 1024;
/** User patterns: 4,096 x 64 KiB = 256 MiB worst case on disk and in memory. */
export const MAX_PATTERNS = 4096;
/** Membership changes in flight (decided, not yet in force): two heights' worth of full batches. */
export const MAX_PENDING = 2 * 512;

/**
 * Used one-time invite digests kept, the most recent 4,096 (oldest evicted first). Invites
 * expire within a week (INVITE_TTL_MAX_MS, node/p2p/members.ts) and 4,096 admissions a week is
 * far beyond a home lab, so an evicted digest belongs to an invite that has long expired. The
 * registry has no clock (every node must derive the same state), hence a bound by count.
 */
export const MAX_USED_INVITES = 4096;

/** Heights after the deciding height at which a membership change takes effect. */
export const MEMBERSHIP_DELAY = 2;

export interface Member {
  readonly publicKey: Uint8Array;
  readonly power: number;
  readonly name: string;
}

export interface PendingChange {
  readonly effectiveHeight: number;
  readonly op: Extract<PatternOp, { kind: 'member.add' | 'member.remove' }>;
}

export interface PatternRecord {
  readonly name: string;
  readonly content: string;
  readonly contentHash: Uint8Array;
  readonly tags: readonly string[];
  readonly quality: Readonly<Record<string, number>> | null;
  /** 1 on creation, +1 per replacement under the same name. */
  readonly version: number;
  /** Height that decided this version. */
  readonly height: number;
}

export interface Registry {
  /** Last applied (decided) height; 0 = genesis. */
  readonly height: number;
  /** Members in force at height+1 before pending changes, sorted by public key hex. */
  readonly members: readonly Member[];
  /** First height the current member list was in force (the proposer sequence restarts there). */
  readonly membersSince: number;
  /** Membership changes decided but not yet in force, in decision order. */
  readonly pending: readonly PendingChange[];
  readonly routePolicy: RoutePolicy;
  /**
   * Height that decided `routePolicy`; 0 = the genesis policy (no route.policy decided yet), where
   * each node uses its config defaults (routing/in-force.ts). Derived by the same replay on every
   * node but NOT covered by `registryHash`: covering it would change the hash of every existing log
   * that decided a route.policy, and opening a store checks each stored hash. The policy itself is covered.
   */
  readonly routePolicyHeight: number;
  /** [alias, model] sorted by alias. */
  readonly aliases: readonly (readonly [string, string])[];
  readonly qualityGates: Readonly<Record<string, number>>;
  /** Sorted by name. */
  readonly patterns: readonly PatternRecord[];
  /**
   * Digests of the one-time invites consumed by decided `member.add`s, in decision order
   * (oldest first), at most MAX_USED_INVITES. Recorded when the add is decided (not when it
   * comes into force), so a second add with the same invite is invalid from the next height on.
   */
  readonly usedInvites: readonly Uint8Array[];
}

export interface Genesis {
  readonly members: readonly Member[];
  readonly routePolicy?: RoutePolicy;
  readonly qualityGates?: Readonly<Record<string, number>>;
}

/** Default routing policy: load dominates; batteries under 20 % and GPUs over 85 C get no work. */
export const DEFAULT_ROUTE_POLICY: RoutePolicy = { weights: { load: 1, latency: 0.5, power: 0.25 }, batteryFloorPct: 20, temperatureCeilingC: 85 };

const byKey = (a: Member, b: Member): number => (keyOf(a.publicKey) < keyOf(b.publicKey) ? -1 : 1);

export function genesisRegistry(g: Genesis): Registry {
  if (g.members.length === 0 || g.members.length > MAX_MEMBERS) throw new ConsensusError('ERR_PATTERN_INVALID', `genesis needs 1-${MAX_MEMBERS} members`);
  makeValidatorSet(g.members, 1); // validates keys, powers, duplicates
  return {
    height: 0,
    members: [...g.members].map((m) => ({ publicKey: m.publicKey, power: m.power, name: m.name })).sort(byKey),
    membersSince: 1,
    pending: [],
    routePolicy: g.routePolicy ?? DEFAULT_ROUTE_POLICY,
    routePolicyHeight: 0,
    aliases: [],
    qualityGates: g.qualityGates ?? {},
    patterns: [],
    usedInvites: [],
  };
}

/** Members in force at `height` (registry.height < height), pending changes applied. */
function membersAt(reg: Registry, height: number): { members: Member[]; since: number } {
  let members = [...reg.members];
  let since = reg.membersSince;
  for (const p of reg.pending) {
    if (p.effectiveHeight > height) continue;
    members = applyMemberOp(members, p.op);
    since = Math.max(since, p.effectiveHeight);
  }
  return { members, since };
}

function applyMemberOp(members: Member[], op: PendingChange['op']): Member[] {
  const k = keyOf(op.publicKey);
  const rest = members.filter((m) => keyOf(m.publicKey) !== k);
  if (op.kind === 'member.remove') return rest;
  return [...rest, { publicKey: op.publicKey, power: op.power, name: op.name }].sort(byKey);
}

/**
 * The validator set at `height`, for height in (registry.height, registry.height + 2]: the
 * members after the pending changes whose effective height has come. Heights further ahead are
 * a prediction (later decisions may still change them); earlier heights need an older registry.
 */
export function validatorSetAt(reg: Registry, height: number): ValidatorSet {
  if (!Number.isSafeInteger(height) || height <= reg.height) {
    throw new ConsensusError('ERR_VALIDATOR_SET', `validator set of height ${height} needs the registry before it (registry is at ${reg.height})`, { height, registryHeight: reg.height });
  }
  let perHeight = validatorSetMemo.get(reg);
  const hit = perHeight?.get(height);
  if (hit !== undefined) return hit;
  const { members, since } = membersAt(reg, height);
  const set = makeValidatorSet(members.map((m) => ({ publicKey: m.publicKey, power: m.power })), since);
  if (perHeight === undefined) {
    perHeight = new Map();
    validatorSetMemo.set(reg, perHeight);
  }
  if (perHeight.size < VALIDATOR_SET_MEMO_HEIGHTS) perHeight.set(height, set);
  return set;
}

/**
 * Validator sets by (immutable) registry and height: every message, status and send asks for
 * the set of the current or next height, and building one sorts and hashes every member.
 * Weak keys: a registry no longer held frees its sets.
 */
const validatorSetMemo = new WeakMap<Registry, Map<number, ValidatorSet>>();
/** Heights memoised per registry: the two a driver works on (H+1, H+2) plus two predictions. */
const VALIDATOR_SET_MEMO_HEIGHTS = 4;

/** Hex digests of `reg.usedInvites`, memoised per (immutable) array: validation runs per proposal. */
const usedInviteSets = new WeakMap<readonly Uint8Array[], ReadonlySet<string>>();

function usedInviteSet(reg: Registry): ReadonlySet<string> {
  let set = usedInviteSets.get(reg.usedInvites);
  if (set === undefined) {
    set = new Set(reg.usedInvites.map(toHex));
    usedInviteSets.set(reg.usedInvites, set);
  }
  return set;
}

/** Is this invite digest recorded as used by a decided member.add (within the MAX_USED_INVITES bound)? */
export function isInviteUsed(reg: Registry, digest: Uint8Array): boolean {
  return usedInviteSet(reg).has(toHex(digest));
}

export type BatchVerdict = { ok: true; ops: PatternOp[] } | { ok: false; reason: string; index: number | null };

/**
 * The validity predicate run before prevote for a proposal at `height` (the registry must be
 * at height - 1): static checks of every op, then the state checks in batch order
 * (membership against the projected set, quality gates, counts).
 */
/**
 * Verdict memo per value bytes object (immutable by contract): the core validates a proposal
 * before prevote and the driver applies the same bytes object after decide; it is checked once.
 * Keyed weakly, so it holds nothing the caller has dropped.
 */
const verdictMemo = new WeakMap<Uint8Array, { reg: Registry; height: number; decided: boolean; verdict: BatchVerdict }>();

/**
 * `decided: true` is for a value already decided (applyBatch, the replay of the log): it skips the
 * rules added after values were first decided (known route weight names, no alias cycle), so a log
 * decided before them still replays, with the same registry hashes; the policy in force names what
 * it cannot apply (routing/in-force.ts). Every proposal is checked with all rules.
 */
export function validateBatch(reg: Registry, height: number, bytes: Uint8Array, o: { decided?: boolean } = {}): BatchVerdict {
  const decided = o.decided === true;
  if (bytes instanceof Uint8Array) {
    const m = verdictMemo.get(bytes);
    // A batch valid under every rule is valid under the decided subset: the core's check before
    // prevote also serves the apply after decide (one check per value, as before).
    if (m !== undefined && m.reg === reg && m.height === height && (m.decided === decided || (decided && m.verdict.ok))) return m.verdict;
  }
  const verdict = validateBatchUncached(reg, height, bytes, decided);
  if (bytes instanceof Uint8Array) verdictMemo.set(bytes, { reg, height, decided, verdict });
  return verdict;
}

/** Unknown weight names of a route.policy op, or null when all are known (rule: the score has a term per weight). */
function unknownWeights(weights: Readonly<Record<string, number>>): string | null {
  const unknown = Object.keys(weights).filter((k) => !isRouteWeightName(k));
  return unknown.length === 0 ? null : `unknown weight${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')} (known: ${ROUTE_WEIGHT_NAMES.join(', ')})`;
}

/** The cycle `alias` closes in `aliases` (alias -> model), as 'a -> b -> a', or null. Bounded: each step visits a new alias. */
function aliasCycle(aliases: ReadonlyMap<string, string>, alias: string): string | null {
  const path = [alias];
  let at = aliases.get(alias);
  while (at !== undefined) {
    if (at === alias) return [...path, at].join(' -> ');
    if (path.includes(at)) return null; // a cycle not through `alias` (from a log decided before this rule)
    path.push(at);
    at = aliases.get(at);
  }
  return null;
}

function validateBatchUncached(reg: Registry, height: number, bytes: Uint8Array, decided: boolean): BatchVerdict {
  if (height !== reg.height + 1) return { ok: false, reason: `registry is at ${reg.height}, not ${height - 1}`, index: null };
  let ops: PatternOp[];
  try {
    ops = decodeBatch(bytes);
  } catch (err) {
    const e = err as ConsensusError;
    const index = typeof e.data?.['index'] === 'number' ? e.data['index'] : null;
    return { ok: false, reason: e.message, index };
  }
  // Projected membership: every member now or pending (a change decided earlier is not undone).
  let projected = membersAt(reg, Number.MAX_SAFE_INTEGER).members;
  let pendingCount = reg.pending.length;
  let gates = reg.qualityGates;
  const aliases = new Map(reg.aliases);
  const patternNames = new Set(reg.patterns.map((p) => p.name));
  const usedBefore = usedInviteSet(reg);
  const invitesInBatch = new Map<string, number>(); // digest hex -> index of the op using it
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    const bad = (reason: string): BatchVerdict => ({ ok: false, reason: `op ${i} (${op.kind}): ${reason}`, index: i });
    switch (op.kind) {
      case 'member.add':
      case 'member.remove': {
        const k = keyOf(op.publicKey);
        const present = projected.some((m) => keyOf(m.publicKey) === k);
        if (op.kind === 'member.add' && present) return bad('already a member');
        if (op.kind === 'member.add' && projected.length >= MAX_MEMBERS) return bad(`cluster is at ${MAX_MEMBERS} members`);
        if (op.kind === 'member.remove' && !present) return bad('not a member');
        if (op.kind === 'member.remove' && projected.length <= 1) return bad('cannot remove the last member');
        if (op.kind === 'member.add' && op.invite !== undefined) {
          const d = toHex(op.invite);
          if (usedBefore.has(d)) return bad('invite already used (a decided member.add consumed it)');
          const earlier = invitesInBatch.get(d);
          if (earlier !== undefined) return bad(`invite already used by op ${earlier} of this batch`);
          invitesInBatch.set(d, i);
        }
        if (++pendingCount > MAX_PENDING) return bad('too many membership changes in flight');
        projected = applyMemberOp(projected, op);
        const power = checkPower(projected); // total power bound
        if (power !== null) return bad(power);
        break;
      }
      case 'route.policy': {
        const unknown = decided ? null : unknownWeights(op.weights);
        if (unknown !== null) return bad(unknown);
        break;
      }
      case 'model.alias':
        if (op.model === null) {
          if (!aliases.has(op.alias)) return bad('no such alias');
          aliases.delete(op.alias);
        } else {
          if (!aliases.has(op.alias) && aliases.size >= MAX_ALIASES) return bad(`at most ${MAX_ALIASES} aliases`);
          aliases.set(op.alias, op.model);
          const cycle = decided ? null : aliasCycle(aliases, op.alias);
          if (cycle !== null) return bad(`alias cycle ${cycle}`);
        }
        break;
      case 'quality.gates':
        gates = op.gates;
        break;
      case 'pattern': {
        if (op.quality !== null) {
          for (const [metric, min] of Object.entries(gates)) {
            const score = op.quality[metric];
            if (score === undefined) return bad(`quality score '${metric}' is gated (>= ${min}) but missing`);
            if (score < min) return bad(`quality score '${metric}' = ${score} is below the gate ${min}`);
          }
        }
        if (!patternNames.has(op.name) && patternNames.size >= MAX_PATTERNS) return bad(`at most ${MAX_PATTERNS} patterns`);
        patternNames.add(op.name);
        break;
      }
    }
  }
  return { ok: true, ops };
}

/**
 * Apply the batch decided at `height` (must be registry.height + 1). The batch must have
 * passed `validateBatch` against this registry (a decided value has: > 2/3 prevoted it valid);
 * it is re-validated here and an invalid one throws ERR_PATTERN_INVALID.
 */
export function applyBatch(reg: Registry, height: number, bytes: Uint8Array): Registry {
  const verdict = validateBatch(reg, height, bytes, { decided: true });
  if (!verdict.ok) throw new ConsensusError('ERR_PATTERN_INVALID', verdict.reason, { height, index: verdict.index });
  // Changes in force at `height` become part of the member list.
  const inForce = membersAt(reg, height);
  let pending = reg.pending.filter((p) => p.effectiveHeight > height);
  let routePolicy = reg.routePolicy;
  let routePolicyHeight = reg.routePolicyHeight;
  const aliases = new Map(reg.aliases);
  let qualityGates = reg.qualityGates;
  const patterns = new Map(reg.patterns.map((p) => [p.name, p]));
  const newInvites: Uint8Array[] = [];
  for (const op of verdict.ops) {
    switch (op.kind) {
      case 'member.add':
      case 'member.remove':
        pending = [...pending, { effectiveHeight: height + MEMBERSHIP_DELAY, op }];
        if (op.kind === 'member.add' && op.invite !== undefined) newInvites.push(op.invite);
        break;
      case 'route.policy':
        routePolicy = { weights: op.weights, batteryFloorPct: op.batteryFloorPct, temperatureCeilingC: op.temperatureCeilingC };
        routePolicyHeight = height;
        break;
      case 'model.alias':
        if (op.model === null) aliases.delete(op.alias);
        else aliases.set(op.alias, op.model);
        break;
      case 'quality.gates':
        qualityGates = op.gates;
        break;
      case 'pattern': {
        const prev = patterns.get(op.name);
        patterns.set(op.name, { name: op.name, content: op.content, contentHash: op.contentHash, tags: [...op.tags], quality: op.quality, version: (prev?.version ?? 0) + 1, height });
        break;
      }
    }
  }
  return {
    height,
    members: inForce.members,
    membersSince: inForce.since,
    pending,
    routePolicy,
    routePolicyHeight,
    aliases: [...aliases.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    qualityGates,
    patterns: [...patterns.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    // Unchanged array when nothing was used (keeps the validation memo); oldest evicted first.
    usedInvites: newInvites.length === 0 ? reg.usedInvites : [...reg.usedInvites, ...newInvites].slice(-MAX_USED_INVITES),
  };
}

/** BLAKE3 of the canonical CBOR of the registry: equal on honest nodes at the same height. */
export function registryHash(reg: Registry): Uint8Array {
  return blake3(
    encodeCanonical({
      height: reg.height,
      members: reg.members.map((m) => ({ publicKey: m.publicKey, power: m.power, name: m.name })),
      membersSince: reg.membersSince,
      pending: reg.pending.map((p) => ({ effectiveHeight: p.effectiveHeight, op: p.op })),
      routePolicy: { weights: reg.routePolicy.weights, batteryFloorPct: reg.routePolicy.batteryFloorPct, temperatureCeilingC: reg.routePolicy.temperatureCeilingC },
      aliases: reg.aliases.map(([a, m]) => [a, m]),
      qualityGates: reg.qualityGates,
      patterns: reg.patterns.map((p) => ({ name: p.name, content: p.content, contentHash: p.contentHash, tags: p.tags, quality: p.quality, version: p.version, height: p.height })),
      // Covered once non-empty; absent (undefined is left out) while empty, so registries that never
      // used an invite hash exactly as before the field existed and old decided logs still verify.
      usedInvites: reg.usedInvites.length === 0 ? undefined : reg.usedInvites,
    }),
  );
}

/** Convenience for drivers: the core's `validateValue` given the registry at height - 1. */
export function validityFor(registryBefore: (height: number) => Registry | null): (height: number, value: Uint8Array) => boolean {
  return (height, value) => {
    const reg = registryBefore(height);
    return reg !== null && validateBatch(reg, height, value).ok;
  };
}
