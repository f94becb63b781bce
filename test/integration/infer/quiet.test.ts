// #14 item 5: a burst of 429s writes one warning line and one summary, not a line each
// (before: 4,177 lines, 1.15 MB from three bursts); the counts stay available for metrics.
import { describe, it, expect, afterAll } from 'vitest';
import { SimulatedBackend, BackendSet } from '../../../node/backends/index.js';
import { InferenceRouter } from '../../../node/forward/index.js';
import { createApiServer } from '../../../node/api/server.js';
import { createJsonLogger } from '../../../node/log.js';

const lines: Record<string, unknown>[] = [];
const clock = { t: 1_700_000_000_000 };
const closers: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of closers) await c();
});

describe('quiet under load', () => {
  it('200 requests refused with 429 in one window: 1 line; the next window starts with "199 more in the last 10 s"', async () => {
    const backends = new BackendSet([new SimulatedBackend({ tokensPerSecond: 0 })]);
    await backends.refresh();
    // maxInFlight 0: every request is refused as busy (429), as under a real overload
    const router = new InferenceRouter({ localPeerId: 'me', backends, peers: () => [], forward: null, maxInFlight: 0 });
    const logger = createJsonLogger({ node: 'n', write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>), now: () => clock.t });
    const api = createApiServer({ router, logger, now: () => clock.t });
    const { url } = await api.listen();
    closers.push(() => api.close());
    const ask = (): Promise<number> =>
      fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'simulated', messages: [{ role: 'user', content: 'x' }] }) }).then(async (r) => {
        await r.arrayBuffer();
        return r.status;
      });
    const statuses: number[] = [];
    for (let i = 0; i < 200; i++) statuses.push(await ask());
    expect(statuses.every((s) => s === 429)).toBe(true);
    const warn = (): Record<string, unknown>[] => lines.filter((l) => String(l['msg']).startsWith('chat request failed'));
    expect(warn()).toHaveLength(1);
    expect(warn()[0]).toMatchObject({ level: 'warn', status: 429, code: 'overloaded' });
    clock.t += 10_000;
    expect(await ask()).toBe(429);
    expect(warn().map((l) => l['msg'])).toEqual(['chat request failed', 'chat request failed (199 more in the last 10 s)', 'chat request failed']);
    expect(api.warnings()['chat request failed']).toEqual({ total: 201, suppressed: 199 });
  });
});
