import { describe, it, expect } from 'vitest';
import { Engine, EventHeap, TraceHash } from '../../../simnet/engine.js';
import { Prng, PrngError } from '../../../base/prng.js';

describe('Prng (xoshiro128**)', () => {
  it('one seed gives one stream; another seed another', () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const c = new Prng(43);
    const sa = Array.from({ length: 100 }, () => a.nextU32());
    expect(Array.from({ length: 100 }, () => b.nextU32())).toEqual(sa);
    expect(Array.from({ length: 100 }, () => c.nextU32())).not.toEqual(sa);
  });

  it('int is in range and roughly uniform; forks are independent of parent draws', () => {
    const r = new Prng(7);
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 100_000; i++) counts[r.int(10)]!++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(600);
    const p1 = new Prng(9);
    const p2 = new Prng(9);
    p2.nextU32();
    expect(p1.fork('x').nextU32()).toBe(p2.fork('x').nextU32());
    expect(p1.fork('x').nextU32()).not.toBe(p1.fork('y').nextU32());
  });

  it('log-normal median is the given median', () => {
    const r = new Prng(3);
    const xs = Array.from({ length: 20_001 }, () => r.logNormal(5, 0.5)).sort((a, b) => a - b);
    expect(xs[10_000]!).toBeGreaterThan(4.8);
    expect(xs[10_000]!).toBeLessThan(5.2);
  });

  it('rejects a bad seed with a typed error', () => {
    expect(() => new Prng(-1)).toThrow(PrngError);
    expect(() => new Prng(2 ** 32)).toThrow(/seed must be/);
  });
});

describe('EventHeap and Engine', () => {
  it('pops by time, then insertion order (deterministic ties)', () => {
    const h = new EventHeap<string>();
    const r = new Prng(1);
    const items: { t: number; id: string }[] = [];
    for (let i = 0; i < 2000; i++) {
      const t = r.int(50);
      items.push({ t, id: `e${i}` });
      h.push(t, `e${i}`);
    }
    const expected = [...items].sort((a, b) => a.t - b.t || Number(a.id.slice(1)) - Number(b.id.slice(1))).map((x) => x.id);
    const got: string[] = [];
    for (let e = h.pop(); e !== undefined; e = h.pop()) got.push(e.event);
    expect(got).toEqual(expected);
  });

  it('runs handlers in virtual time and stops at the bound', () => {
    const e = new Engine<number>();
    const seen: [number, number][] = [];
    e.at(30, 3);
    e.at(10, 1);
    e.at(20, 2);
    e.run(25, (ev, now) => {
      seen.push([ev, now]);
      if (ev === 1) e.after(5, 9);
    });
    expect(seen).toEqual([
      [1, 10],
      [9, 15],
      [2, 20],
    ]);
    expect(e.pending).toBe(1);
  });

  it('fails loudly past its event bound', () => {
    const e = new Engine<number>({ maxQueuedEvents: 10, maxEvents: 100 });
    e.at(0, 0);
    expect(() => e.run(1e9, () => e.after(1, 0))).toThrow(/more than 100 events/);
  });

  it('trace hash depends on every fed word and its order', () => {
    const a = new TraceHash();
    const b = new TraceHash();
    const c = new TraceHash();
    a.u32(1);
    a.u32(2);
    b.u32(1);
    b.u32(2);
    c.u32(2);
    c.u32(1);
    expect(a.hex()).toBe(b.hex());
    expect(a.hex()).not.toBe(c.hex());
    expect(a.hex()).toMatch(/^[0-9a-f]{16}$/);
  });
});
