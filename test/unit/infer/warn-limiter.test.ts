// node/warn-limiter.ts with an injected clock and timer: a burst writes one line and one summary.
import { describe, it, expect } from 'vitest';
import { WarnLimiter, MAX_WARNING_KINDS } from '../../../node/warn-limiter.js';
import { createJsonLogger } from '../../../node/log.js';

function setup(): { lines: Record<string, unknown>[]; limiter: WarnLimiter; clock: { t: number }; timers: (() => void)[] } {
  const lines: Record<string, unknown>[] = [];
  const clock = { t: 1_000_000 };
  const timers: (() => void)[] = [];
  const log = createJsonLogger({ node: 'n', write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>), now: () => clock.t });
  const limiter = new WarnLimiter(log, { now: () => clock.t, schedule: (fn) => void timers.push(fn) });
  return { lines, limiter, clock, timers };
}

describe('rate-limited warnings', () => {
  it('1000 warnings of a kind in a window: one line, then "999 more in the last 10 s" when the window ends', () => {
    const { lines, limiter, clock, timers } = setup();
    for (let i = 0; i < 1000; i++) {
      limiter.warn('busy', 'request refused: busy', { status: 429 });
      clock.t += 5;
    }
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ msg: 'request refused: busy', status: 429, kind: 'busy' });
    clock.t = 1_000_000 + 10_000;
    expect(timers).toHaveLength(1);
    timers[0]!();
    expect(lines).toHaveLength(2);
    expect(lines[1]!['msg']).toBe('request refused: busy (999 more in the last 10 s)');
    expect(lines[1]!['suppressed']).toBe(999);
    expect(limiter.counts()['busy']).toEqual({ total: 1000, suppressed: 999 });
  });

  it('kinds are independent; a warning after a quiet window is written at once; kinds are bounded', () => {
    const { lines, limiter, clock } = setup();
    limiter.warn('a', 'A');
    limiter.warn('b', 'B');
    limiter.warn('a', 'A');
    expect(lines.map((l) => l['msg'])).toEqual(['A', 'B']);
    clock.t += 20_000;
    limiter.warn('a', 'A again');
    // the suppressed one is summarised first, then the new window's first line
    expect(lines.map((l) => l['msg'])).toEqual(['A', 'B', 'A (1 more in the last 10 s)', 'A again']);
    for (let i = 0; i < MAX_WARNING_KINDS + 10; i++) limiter.warn(`k${i}`, 'x');
    expect(Object.keys(limiter.counts()).length).toBeLessThanOrEqual(MAX_WARNING_KINDS + 1);
    expect(limiter.counts()['(other)']!.total).toBeGreaterThan(0);
  });
});
