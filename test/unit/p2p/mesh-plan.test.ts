import { describe, expect, it } from 'vitest';
import { backoffDelayMs, chooseTargets, DialSchedule, FULL_MESH_MAX, RANDOM_SUBSET_SIZE } from '../../../node/p2p/mesh-plan.js';

const ids = (n: number, prefix = 'p'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(4, '0')}`);

describe('chooseTargets', () => {
  it('up to 64 other members: every member but itself, plus bootstrap peers, sorted', () => {
    const members = ids(FULL_MESH_MAX + 1); // self + 64 others
    const t = chooseTargets({ self: members[5]!, members, validators: [], extra: ['boot'] });
    expect(t).toHaveLength(FULL_MESH_MAX + 1);
    expect(t).not.toContain(members[5]);
    expect(t).toContain('boot');
    expect(t).toEqual([...t].sort());
  });

  it('beyond 64: all validators plus a bounded random subset, stable for the same node, different between nodes', () => {
    const members = ids(300);
    const validators = members.slice(100, 110);
    const a = chooseTargets({ self: members[0]!, members, validators });
    expect(a.length).toBe(validators.length + RANDOM_SUBSET_SIZE);
    for (const v of validators) expect(a).toContain(v);
    expect(a).not.toContain(members[0]);
    // the same input (in another order) gives the same subset: no churn on re-evaluation
    expect(chooseTargets({ self: members[0]!, members: [...members].reverse(), validators })).toEqual(a);
    const b = chooseTargets({ self: members[1]!, members, validators });
    expect(b).not.toEqual(a);
    // a validator that is not (or no longer) a member is not a target; self as validator neither
    const c = chooseTargets({ self: members[0]!, members, validators: [...validators, 'gone', members[0]!] });
    expect(c).not.toContain('gone');
    expect(c).not.toContain(members[0]);
  });

  it('honours smaller bounds (fullMeshMax, subsetSize)', () => {
    const members = ids(10);
    expect(chooseTargets({ self: members[0]!, members, validators: [members[9]!], fullMeshMax: 4, subsetSize: 2 })).toHaveLength(3);
  });
});

describe('backoffDelayMs', () => {
  it('doubles from the base, stops at the cap, jitters +-25%', () => {
    expect(backoffDelayMs(0, 500, 30_000, 0.5)).toBe(500);
    expect(backoffDelayMs(3, 500, 30_000, 0.5)).toBe(4000);
    expect(backoffDelayMs(20, 500, 30_000, 0.5)).toBe(30_000);
    expect(backoffDelayMs(1000, 500, 30_000, 0.5)).toBe(30_000); // no overflow for huge attempt counts
    expect(backoffDelayMs(3, 500, 30_000, 0)).toBe(3000);
    expect(backoffDelayMs(3, 500, 30_000, 0.999999)).toBe(5000);
  });
});

describe('DialSchedule', () => {
  const always = (): boolean => true;
  const never = (): boolean => false;

  it('due: unconnected targets with an address, within the in-flight bound; failure backs off, success resets', () => {
    const s = new DialSchedule({ baseMs: 100, maxMs: 1000, maxAttempts: 3, maxInFlight: 2 });
    s.setTargets(['a', 'b', 'c']);
    const connected = new Set<string>();
    const isConn = (p: string): boolean => connected.has(p);
    expect(s.due(0, isConn, (p) => p !== 'c')).toEqual(['a', 'b']);
    expect(s.missing(0, isConn, (p) => p !== 'c').find((m) => m.peer === 'c')?.reason).toBe('no-address');
    s.started('a');
    s.started('b');
    expect(s.due(0, isConn, always)).toEqual([]); // 2 in flight: the bound
    s.failed('a', 0, 0.5, 'ECONNREFUSED');
    expect(s.missing(0, isConn, always).find((m) => m.peer === 'a')).toMatchObject({ reason: 'backoff', failures: 1, nextInMs: 100, lastError: 'ECONNREFUSED' });
    expect(s.due(50, isConn, always)).toEqual(['c']); // a waits for its backoff, one slot free
    expect(s.due(100, isConn, always)).toEqual(['c']); // b still in flight: one slot, c has waited longest
    s.succeeded('b');
    connected.add('b');
    expect(s.due(100, isConn, always)).toEqual(['c', 'a']);
    s.started('a');
    s.failed('a', 100, 0.5, 'x');
    s.started('a');
    s.failed('a', 400, 0.5, 'x');
    expect(s.missing(10_000, isConn, always).find((m) => m.peer === 'a')).toMatchObject({ reason: 'gave-up', failures: 3, nextInMs: null });
    expect(s.due(10_000, isConn, always)).not.toContain('a'); // parked after maxAttempts
    s.reset('a'); // new address information
    expect(s.due(10_000, isConn, always)).toContain('a');
    expect(s.due(10_000, isConn, always)).not.toContain('b');
    expect(s.missing(10_000, isConn, always).map((m) => m.peer)).not.toContain('b');
  });

  it('setTargets keeps the state of targets that stay and drops the others', () => {
    const s = new DialSchedule({ baseMs: 1000, maxMs: 1000, maxAttempts: 10, maxInFlight: 8 });
    s.setTargets(['a', 'b']);
    s.started('a');
    s.failed('a', 0, 0.5, 'x');
    s.setTargets(['a', 'c']);
    expect(s.targets()).toEqual(['a', 'c']);
    expect(s.due(10, never, always)).toEqual(['c']);
    expect(s.missing(10, never, always).find((m) => m.peer === 'a')?.failures).toBe(1);
  });
});
