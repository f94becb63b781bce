/**
 * The discrete-event core: a virtual clock in integer microseconds, a binary-heap
 * event queue ordered by (time, insertion sequence) so that ties are broken the
 * same way on every run, and a running trace hash.
 *
 * The engine knows nothing about consensus or networks: it pops events in order
 * and hands each to the caller's handler. No I/O, no wall clock, no Math.random.
 */
import { SimnetError } from './errors.js';

/** Virtual time in integer microseconds since the start of the run. */
export type SimTimeUs = number;

interface Entry<E> {
  atUs: SimTimeUs;
  seq: number;
  event: E;
}

/**
 * Min-heap on (atUs, seq). seq is unique, so the order is total and deterministic. Stored as
 * three parallel arrays (no object per queued event: at n = 50 every broadcast queues ~50).
 */
export class EventHeap<E> {
  private readonly times: number[] = [];
  private readonly seqs: number[] = [];
  private readonly events: E[] = [];
  private nextSeq = 0;

  get size(): number {
    return this.times.length;
  }

  push(atUs: SimTimeUs, event: E): void {
    const times = this.times;
    const seqs = this.seqs;
    const events = this.events;
    const seq = this.nextSeq++;
    let i = times.length;
    times.push(atUs);
    seqs.push(seq);
    events.push(event);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pt = times[p]!;
      if (pt < atUs || (pt === atUs && seqs[p]! < seq)) break;
      times[i] = pt;
      seqs[i] = seqs[p]!;
      events[i] = events[p]!;
      i = p;
    }
    times[i] = atUs;
    seqs[i] = seq;
    events[i] = event;
  }

  peekTime(): SimTimeUs | undefined {
    return this.times[0];
  }

  pop(): Entry<E> | undefined {
    const times = this.times;
    if (times.length === 0) return undefined;
    const seqs = this.seqs;
    const events = this.events;
    const top: Entry<E> = { atUs: times[0]!, seq: seqs[0]!, event: events[0]! };
    const lt = times.pop()!;
    const ls = seqs.pop()!;
    const le = events.pop()!;
    const n = times.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        let c = l;
        if (r < n && (times[r]! < times[l]! || (times[r] === times[l] && seqs[r]! < seqs[l]!))) c = r;
        const ct = times[c]!;
        if (lt < ct || (lt === ct && ls < seqs[c]!)) break;
        times[i] = ct;
        seqs[i] = seqs[c]!;
        events[i] = events[c]!;
        i = c;
      }
      times[i] = lt;
      seqs[i] = ls;
      events[i] = le;
    }
    return top;
  }
}

/**
 * Running trace hash: two independent 32-bit lanes mixed with murmur3's
 * multiply-rotate step and finalised with its fmix32, printed as 16 hex digits.
 * Chosen over BLAKE3 because it is fed at every delivered event (millions per
 * long run) and a per-event WASM call would dominate the simulator's cost; it is
 * not cryptographic and need not be: it only has to change when the sequence of
 * events changes, so that "same seed, same hash" proves bit-for-bit replay.
 */
export class TraceHash {
  private h1 = 0x9747b28c;
  private h2 = 0x2545f491;
  private count = 0;

  /** Feeds one 32-bit integer (other numbers are reduced with `>>> 0` after splitting). */
  u32(x: number): void {
    let k = x >>> 0;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    this.h1 ^= k;
    this.h1 = (this.h1 << 13) | (this.h1 >>> 19);
    this.h1 = (Math.imul(this.h1, 5) + 0xe6546b64) | 0;
    this.h2 = (Math.imul(this.h2 ^ (x >>> 0), 0x85ebca6b) + 0x165667b1) | 0;
    this.h2 = (this.h2 << 17) | (this.h2 >>> 15);
    this.count++;
  }

  /** Feeds a non-negative integer up to 2^53 as two words. */
  num(x: number): void {
    this.u32(x % 4294967296);
    this.u32(Math.floor(x / 4294967296));
  }

  /** Feeds a string's UTF-16 code units. */
  str(s: string): void {
    this.u32(s.length);
    for (let i = 0; i < s.length; i++) this.u32(s.charCodeAt(i));
  }

  /** Feeds up to the first 16 bytes of a byte array (signatures are unique enough). */
  bytesPrefix(b: Uint8Array): void {
    this.u32(b.length);
    const n = Math.min(b.length, 16);
    for (let i = 0; i + 4 <= n; i += 4) this.u32(((b[i] as number) | ((b[i + 1] as number) << 8) | ((b[i + 2] as number) << 16) | ((b[i + 3] as number) << 24)) >>> 0);
  }

  /** The digest so far as 16 hex digits (does not change the state). */
  hex(): string {
    const f = (h: number): string => {
      let x = (h ^ this.count) >>> 0;
      x ^= x >>> 16;
      x = Math.imul(x, 0x85ebca6b) >>> 0;
      x ^= x >>> 13;
      x = Math.imul(x, 0xc2b2ae35) >>> 0;
      x ^= x >>> 16;
      return (x >>> 0).toString(16).padStart(8, '0');
    };
    return f(this.h1) + f(this.h2 ^ this.h1);
  }
}

export interface EngineLimits {
  /** Bound on pending events; a runaway protocol (timer storm) fails loudly instead of eating memory. */
  maxQueuedEvents: number;
  /** Bound on processed events per run, for the same reason. */
  maxEvents: number;
}

/** 2M pending events is ~200 MB worst case; honest n=50 runs stay under 50k. */
export const defaultEngineLimits: EngineLimits = { maxQueuedEvents: 2_000_000, maxEvents: 200_000_000 };

export class Engine<E> {
  private readonly heap = new EventHeap<E>();
  private nowUs: SimTimeUs = 0;
  private processed = 0;
  readonly trace = new TraceHash();

  constructor(private readonly limits: EngineLimits = defaultEngineLimits) {}

  get now(): SimTimeUs {
    return this.nowUs;
  }

  get eventsProcessed(): number {
    return this.processed;
  }

  get pending(): number {
    return this.heap.size;
  }

  /** Schedules an event at an absolute time (clamped to now: the past is not reachable). */
  at(atUs: SimTimeUs, event: E): void {
    if (this.heap.size >= this.limits.maxQueuedEvents) {
      throw new SimnetError('ERR_SIMNET_LIMIT', `event queue over its bound of ${this.limits.maxQueuedEvents}`, { nowUs: this.nowUs });
    }
    this.heap.push(Math.max(this.nowUs, Math.round(atUs)), event);
  }

  /** Schedules an event delayUs after now. */
  after(delayUs: number, event: E): void {
    this.at(this.nowUs + Math.max(0, delayUs), event);
  }

  /**
   * Runs events in (time, sequence) order until the queue is empty, the next
   * event is later than untilUs, or `stop()` returns true after an event.
   */
  run(untilUs: SimTimeUs, handle: (event: E, nowUs: SimTimeUs) => void, stop?: () => boolean): void {
    for (;;) {
      const t = this.heap.peekTime();
      if (t === undefined || t > untilUs) break;
      const entry = this.heap.pop() as Entry<E>;
      this.nowUs = entry.atUs;
      if (++this.processed > this.limits.maxEvents) {
        throw new SimnetError('ERR_SIMNET_LIMIT', `more than ${this.limits.maxEvents} events in one run`, { nowUs: this.nowUs });
      }
      handle(entry.event, this.nowUs);
      if (stop !== undefined && stop()) return;
    }
    if (this.nowUs < untilUs && this.heap.size === 0) this.nowUs = untilUs;
  }
}
