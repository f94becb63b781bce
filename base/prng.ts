/**
 * The project's one seeded PRNG (simnet/, routing/simulate.ts, seeded tests): xoshiro128** (Blackman & Vigna, 2018), 32-bit
 * state words so every operation stays in exact 32-bit integer arithmetic
 * (Math.imul, >>> 0): the same seed gives the same stream bit for bit on every
 * JavaScript engine. The 128-bit state is filled from one 32-bit seed with
 * splitmix32, and independent sub-streams (`fork(label)`) mix the label into a
 * fresh seed so that adding draws to one concern (say, latency) never shifts the
 * draws of another (say, which faults a seed gets).
 *
 * Pure (no clock, no Math.random): it lives in base/ so both the pure routing
 * simulation and simnet/ can use it. Not for cryptography: keys come from `identityFromSeed`.
 */
import { FednodeError } from './errors.js';

/** A bad argument to the PRNG (seed or bound out of range, pick from nothing). */
export class PrngError extends FednodeError<'ERR_PRNG_ARGS'> {
  constructor(message: string, data: Record<string, unknown> = {}) {
    super('ERR_PRNG_ARGS', message, data);
    this.name = 'PrngError';
  }
}

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) >>> 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a over a label's UTF-16 code units, for deriving sub-stream seeds. */
function hashLabel(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  /** The 32-bit seed this stream was made from (for reports and forks). */
  readonly seed: number;

  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new PrngError(`seed must be an integer in [0, 2^32): ${seed}`, { seed });
    }
    this.seed = seed >>> 0;
    const st = { s: this.seed };
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
    // xoshiro's all-zero state is a fixed point; splitmix32 cannot give four zeros
    // in a row in practice, but guard anyway.
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** Next uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.b << 9) >>> 0;
    this.c = (this.c ^ this.a) >>> 0;
    this.d = (this.d ^ this.b) >>> 0;
    this.b = (this.b ^ this.c) >>> 0;
    this.a = (this.a ^ this.d) >>> 0;
    this.c = (this.c ^ t) >>> 0;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Uniform float in [0, 1) with 32 bits of precision. */
  float(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [0, n), n >= 1 (rejection sampling: no modulo bias). */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 0xffffffff) {
      throw new PrngError(`Prng.int bound must be an integer in [1, 2^32]: ${n}`, { n });
    }
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** Integer in [lo, hi] inclusive. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return p > 0 && this.float() < p;
  }

  /** Standard normal by Box-Muller (one draw per call, the pair's twin discarded for simplicity). */
  normal(): number {
    // 1 - float() is in (0, 1], so the log is finite.
    const u1 = 1 - this.float();
    const u2 = this.float();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** Log-normal with the given median and shape sigma (the log's standard deviation). */
  logNormal(median: number, sigma: number): number {
    return median * Math.exp(sigma * this.normal());
  }

  /** Picks one element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    const v = items[this.int(items.length)];
    if (v === undefined) throw new PrngError('Prng.pick on an empty array');
    return v;
  }

  /** Fisher-Yates shuffle of a copy. */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = out[i] as T;
      out[i] = out[j] as T;
      out[j] = t;
    }
    return out;
  }

  /**
   * An independent stream derived from this stream's seed and a label. Forks do
   * not consume draws from the parent, so the order of forks does not matter.
   */
  fork(label: string): Prng {
    const st = { s: (this.seed ^ hashLabel(label)) >>> 0 };
    splitmix32(st);
    return new Prng(splitmix32(st));
  }
}
