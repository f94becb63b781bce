/**
 * The pending-op pool: ops submitted anywhere in the cluster (gossiped to every member) that
 * wait for a proposer. Ops are keyed by the BLAKE3 of their canonical encoding, so the same op
 * submitted twice or received from several peers is held once, and a decided batch removes
 * exactly the ops it carries. Bounded in ops and bytes.
 */
import { blake3 } from '../../crypto/blake3.js';
import { toHex } from '../../base/hex.js';
import { encodeBatch, MAX_BATCH_BYTES, MAX_BATCH_OPS, type PatternOp } from '../../consensus/patterns.js';
import { validateBatch, type Registry } from '../../consensus/registry.js';

/**
 * 8,192 ops: 16 full batches, i.e. several seconds of the 500 patterns/s target queued behind
 * a stalled round; beyond that a submitter is told ERR_MEMPOOL_FULL rather than left waiting.
 */
export const MEMPOOL_MAX_OPS = 8192;
/** 32 MiB: 8,192 ops of 4 KiB; a few large patterns (64 KiB content) still fit. */
export const MEMPOOL_MAX_BYTES = 32 * 1024 * 1024;
/** Room left in a batch for its own framing (map header, version) beyond the ops' bytes. */
const BATCH_FRAMING_BYTES = 64;
/** Oldest ops re-checked alone after each decision (a few validations per height, not the pool). */
export const PRUNE_PER_HEIGHT = 64;
/** Re-validations while building one batch (each drops an op that conflicts with earlier ones). */
const MAX_BUILD_PASSES = 16;

/** Identifier of an op: hex BLAKE3 of its canonical one-op batch encoding. Throws on a malformed op. */
export function opId(op: PatternOp): { id: string; bytes: number } {
  const enc = encodeBatch([op]);
  return { id: toHex(blake3(enc)), bytes: enc.length };
}

interface Entry {
  readonly op: PatternOp;
  readonly bytes: number;
}

export type AddResult = 'added' | 'duplicate' | 'full';
/** Called for each op evicted because it is invalid on its own (its submitter can be told why). */
export type EvictListener = (id: string, reason: string) => void;

export class Mempool {
  private readonly ops = new Map<string, Entry>();
  private totalBytes = 0;

  constructor(
    private readonly maxOps: number = MEMPOOL_MAX_OPS,
    private readonly maxBytes: number = MEMPOOL_MAX_BYTES,
    private readonly onEvict: EvictListener = () => undefined,
  ) {}

  private evict(id: string, reason: string): void {
    if (this.remove(id)) this.onEvict(id, reason);
  }

  get size(): number {
    return this.ops.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  get(id: string): { op: PatternOp; bytes: number } | undefined {
    const e = this.ops.get(id);
    return e === undefined ? undefined : { op: e.op, bytes: e.bytes };
  }

  has(id: string): boolean {
    return this.ops.has(id);
  }

  /** Room for `count` more ops totalling `bytes`? */
  fits(count: number, bytes: number): boolean {
    return this.ops.size + count <= this.maxOps && this.totalBytes + bytes <= this.maxBytes;
  }

  add(id: string, op: PatternOp, bytes: number): AddResult {
    if (this.ops.has(id)) return 'duplicate';
    if (!this.fits(1, bytes)) return 'full';
    this.ops.set(id, { op, bytes });
    this.totalBytes += bytes;
    return 'added';
  }

  remove(id: string): boolean {
    const e = this.ops.get(id);
    if (e === undefined) return false;
    this.ops.delete(id);
    this.totalBytes -= e.bytes;
    return true;
  }

  /**
   * Evict the oldest `limit` ops that are invalid on their own against `reg` at `height` (e.g.
   * a member.add whose twin was just decided). Without it, ops that can never be decided would
   * keep idle nodes starting heights. Bounded work per call; returns how many were evicted.
   */
  pruneInvalid(reg: Registry, height: number, limit: number = PRUNE_PER_HEIGHT): number {
    let checked = 0;
    const bad: { id: string; reason: string }[] = [];
    for (const [id, e] of this.ops) {
      if (checked++ >= limit) break;
      const v = validateBatch(reg, height, encodeBatch([e.op]));
      if (!v.ok) bad.push({ id, reason: v.reason });
    }
    for (const b of bad) this.evict(b.id, b.reason);
    return bad.length;
  }

  /**
   * The batch this node proposes at `height` (registry at height - 1): oldest ops first, at
   * most MAX_BATCH_OPS / MAX_BATCH_BYTES, valid together against `reg`. An op invalid on its
   * own is evicted (it can never be decided until the registry changes; its submitter sees a
   * timeout); one that only conflicts with an earlier op waits for a later batch.
   * Returns null when the pool has nothing valid (the caller proposes an empty value).
   */
  build(reg: Registry, height: number): Uint8Array | null {
    let chosen: { id: string; op: PatternOp }[] = [];
    let size = BATCH_FRAMING_BYTES;
    for (const [id, e] of this.ops) {
      if (chosen.length >= MAX_BATCH_OPS) break;
      if (size + e.bytes > MAX_BATCH_BYTES) continue;
      chosen.push({ id, op: e.op });
      size += e.bytes;
    }
    for (let pass = 0; pass < MAX_BUILD_PASSES && chosen.length > 0; pass++) {
      let bytes: Uint8Array;
      try {
        bytes = encodeBatch(chosen.map((c) => c.op));
      } catch {
        // cannot happen for ops that each encoded alone within the byte budget; be safe: drop the last
        chosen = chosen.slice(0, -1);
        continue;
      }
      const v = validateBatch(reg, height, bytes);
      if (v.ok) return bytes;
      const bad = v.index === null ? chosen.length - 1 : v.index;
      const culprit = chosen[bad];
      if (culprit === undefined) return null;
      const alone = validateBatch(reg, height, encodeBatch([culprit.op]));
      if (!alone.ok) this.evict(culprit.id, alone.reason);
      chosen = chosen.filter((_, i) => i !== bad);
    }
    // Too many conflicts in one pool: propose only what validated one by one would be slow; propose nothing.
    return null;
  }
}
