/**
 * Join/leave churn over the production driver (the `churn` fault). Node n (not a genesis
 * member) comes online at plan.churn.joinUs and a seeded client submits `member.add` for it to
 * an honest node, again every RETRY_MS until it is decided; once decided, `member.remove` of the
 * honest genesis node `leaver` is submitted the same way (join first, so the Byzantine bound
 * holds at every height). Both take effect at H+2 (the registry's rule). The joiner catches up
 * by certificates like any lagging node and must reach the target height; the leaver stops
 * for good once its own registry says it is no validator of the next height, and is then
 * neither waited for nor checked for catch-up.
 */
import type { PatternOp } from '../consensus/patterns.js';
import { validatorSetAt, type Registry } from '../consensus/registry.js';
import type { DecidedEntry } from '../node/consensus/api.js';
import { MS, TAG_WORK, type SimNode } from './driver-ports.js';
import type { Engine } from './engine.js';
import type { Ev } from './driver-ports.js';
import type { Prng } from '../base/prng.js';
import type { FaultPlan } from './faults.js';

/** A membership submit that failed or timed out is tried again this often (sim ms). */
const RETRY_MS = 1_000;
/** How long one membership submit may wait for its decision (sim ms) before it is retried. */
const SUBMIT_TIMEOUT_MS = 10_000;

/** What churn needs from the simulated world. */
export interface ChurnWorld {
  readonly engine: Engine<Ev>;
  readonly nodes: readonly SimNode[];
  readonly rWork: Prng;
  readonly counters: { joins: number; joinsDecided: number; removesDecided: number; leaves: number; submits: number; submitFailures: number };
  boot(x: SimNode): Promise<void>;
  crash(x: SimNode): void;
  finish(x: SimNode): void;
  upHonest(): SimNode[];
  traceLine(height: number | null, line: () => string): void;
}

type Stage = 'waiting' | 'adding' | 'removing' | 'done';

const sameKey = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

export class Churn {
  private stage: Stage = 'waiting';
  constructor(
    private readonly w: ChurnWorld,
    private readonly plan: FaultPlan['churn'],
  ) {}

  /** Sets up the join (or, when no honest genesis node could leave, retires the spare joiner slot). */
  schedule(): void {
    const c = this.plan;
    const spare = this.w.nodes.find((x) => !x.up && x.honest && !x.fork);
    if (c === null) {
      // No honest genesis node could leave (tiny n, or all but the crashing one Byzantine): the
      // spare slot never joins, and is neither waited for nor checked.
      if (spare !== undefined) {
        spare.left = true;
        this.w.finish(spare);
      }
      return;
    }
    this.w.engine.at(c.joinUs, { k: 'call', node: -1, inc: 0, tag: TAG_WORK, fn: () => this.join() });
  }

  private join(): void {
    const c = this.plan!;
    const j = this.w.nodes[c.joiner]!;
    j.up = true;
    this.w.counters.joins++;
    this.w.traceLine(null, () => `n${j.idx} comes online and asks to join`);
    void this.w.boot(j);
    this.stage = 'adding';
    this.submit({ kind: 'member.add', publicKey: j.id.publicKey, power: 1, name: `n${j.idx}` }, 'adding');
  }

  /** Submits `op` to a random honest node until the stage moves on (decided), retrying on failure. */
  private submit(op: PatternOp, stage: Stage): void {
    if (this.stage !== stage) return;
    const again = (): void => {
      this.w.engine.after(RETRY_MS * MS, { k: 'call', node: -1, inc: 0, tag: TAG_WORK, fn: () => this.submit(op, stage) });
    };
    const c = this.plan!;
    const up = this.w.upHonest().filter((x) => x.idx !== c.joiner && x.idx !== c.leaver);
    if (up.length === 0) return again();
    const x = this.w.rWork.pick(up);
    this.w.counters.submits++;
    x.driver!.submit([op], { timeoutMs: SUBMIT_TIMEOUT_MS }).catch(() => {
      this.w.counters.submitFailures++;
      again();
    });
  }

  /** Every decision of every node: moves the stages on, and stops the leaver once it is out. */
  decided(x: SimNode, e: DecidedEntry, reg: Registry): void {
    const c = this.plan;
    if (c === null || !x.honest) return;
    const joiner = this.w.nodes[c.joiner]!;
    const leaver = this.w.nodes[c.leaver]!;
    for (const op of e.ops) {
      if (this.stage === 'adding' && op.kind === 'member.add' && sameKey(op.publicKey, joiner.id.publicKey)) {
        this.stage = 'removing';
        this.w.counters.joinsDecided++;
        this.w.traceLine(null, () => `member.add n${joiner.idx} decided at height ${e.height}`);
        this.submit({ kind: 'member.remove', publicKey: leaver.id.publicKey }, 'removing');
      } else if (this.stage === 'removing' && op.kind === 'member.remove' && sameKey(op.publicKey, leaver.id.publicKey)) {
        this.stage = 'done';
        this.w.counters.removesDecided++;
        this.w.traceLine(null, () => `member.remove n${leaver.idx} decided at height ${e.height}`);
      }
    }
    if (x === leaver && !leaver.left && this.stage === 'done' && !validatorSetAt(reg, reg.height + 1).validators.some((v) => sameKey(v.publicKey, leaver.id.publicKey))) {
      this.w.traceLine(null, () => `n${leaver.idx} is no validator of height ${reg.height + 1}: it leaves`);
      this.w.crash(leaver);
      leaver.left = true;
      this.w.counters.leaves++;
      this.w.finish(leaver);
    }
  }
}
