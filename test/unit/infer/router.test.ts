// The node's router (node/forward/router.ts) in-process with a simulated backend: the node
// itself ranked through the same conversion as a remote advert, alias resolution inside the
// router, the decision ring, the token count for the energy meter.
import { describe, it, expect } from 'vitest';
import { BackendSet, SimulatedBackend } from '../../../node/backends/index.js';
import { InferenceRouter, RECENT_DECISIONS_MAX } from '../../../node/forward/router.js';
import type { RoutedEvent } from '../../../node/forward/router.js';
import { advertLoadOf } from '../../../node/forward/candidate.js';
import { InferError } from '../../../node/forward/errors.js';
import type { ForwardClient } from '../../../node/forward/client.js';
import type { AdvertBody } from '../../../node/adverts/advert.js';
import type { Candidate } from '../../../routing/policy.js';
import { policyInForce } from '../../../routing/in-force.js';
import type { PolicyInForce } from '../../../routing/in-force.js';
import { DEFAULT_ROUTE_WEIGHTS } from '../../../routing/policy.js';
import { sampleBody } from '../../helpers/adverts.js';

const SELF = 'self-peer';
const policyWith = (aliases: [string, string][] = [], floor = 20): PolicyInForce =>
  policyInForce({ height: 5, routePolicy: { weights: DEFAULT_ROUTE_WEIGHTS, batteryFloorPct: floor, temperatureCeilingC: 85 }, routePolicyHeight: 3, aliases }, { batteryFloorPct: 20, tempCeilingC: 85 });

async function router(o: { self?: AdvertBody | null; peers?: Candidate[]; policy?: PolicyInForce } = {}): Promise<InferenceRouter> {
  const backends = new BackendSet([new SimulatedBackend({ models: ['m'], tokensPerSecond: 0 })]);
  await backends.refresh();
  return new InferenceRouter({
    localPeerId: SELF,
    backends,
    peers: () => o.peers ?? [],
    selfReadings: () => o.self ?? null,
    forward: null,
    ...(o.policy !== undefined ? { policy: () => o.policy as PolicyInForce } : {}),
  });
}

const remote = (peerId: string, body: AdvertBody): Candidate => ({ peerId, isLocal: false, models: body.models, advert: advertLoadOf(body, 0), rttMs: 1 });

async function drain(it: AsyncIterable<RoutedEvent>): Promise<RoutedEvent[]> {
  const out: RoutedEvent[] = [];
  for await (const e of it) out.push(e);
  return out;
}

describe('InferenceRouter: the node itself is a candidate like any other', () => {
  const lowBattery = sampleBody({ models: ['m'], inFlight: 0, power: { source: 'battery', batteryPct: 12, charging: false } });
  const hot = sampleBody({ models: ['m'], inFlight: 0, gpus: [{ ...sampleBody().gpus[0]!, temperatureC: 92 }] });
  const healthy = sampleBody({ models: ['m'], inFlight: 2 });

  it.each([
    ['on low battery', lowBattery, 'battery 12% < floor 20%'],
    ['over the temperature ceiling', hot, 'gpu 92 C > ceiling 85 C'],
  ])('%s, the local node goes to the fallback tier exactly as a remote one with the same readings', async (_label, body, reason) => {
    const r = await router({ self: body, peers: [remote('twin', body), remote('ok', healthy)] });
    const ranked = r.rank('m', 1);
    expect(ranked.map((c) => c.peerId)[0]).toBe('ok');
    const self = ranked.find((c) => c.peerId === SELF)!;
    const twin = ranked.find((c) => c.peerId === 'twin')!;
    expect(self).toMatchObject({ tier: 'fallback', reasons: [reason], isLocal: true });
    expect(twin).toMatchObject({ tier: 'fallback', reasons: [reason] });
    // the same terms but latency (the node itself is 0 ms away)
    expect({ ...self.terms, latency: 0 }).toEqual({ ...twin.terms, latency: 0 });
  });

  it('the decided battery floor applies to the local node too (policy in force, not a constant)', async () => {
    const body = sampleBody({ models: ['m'], power: { source: 'battery', batteryPct: 40, charging: false } });
    expect((await router({ self: body })).rank('m', 1)[0]!.tier).toBe('preferred');
    expect((await router({ self: body, policy: policyWith([], 50) })).rank('m', 1)[0]).toMatchObject({ tier: 'fallback', reasons: ['battery 40% < floor 50%'] });
  });

  it('before its first reading the local node ranks on its own counters with an unknown power source (no invented AC)', async () => {
    const r = await router({ self: null });
    expect(r.rank('m', 1)[0]).toMatchObject({ peerId: SELF, tier: 'preferred', energySource: 'profile default' });
  });
});

describe('InferenceRouter: aliases resolve inside the router', () => {
  it('a request by alias is served with the model it points to; /v1/models lists the alias with its model', async () => {
    const r = await router({ policy: policyWith([['fast', 'm']]) });
    const events = await drain(r.chat({ model: 'fast', messages: [{ role: 'user', content: 'hello there' }] }, { requestId: 'r1' }));
    expect(events[0]).toMatchObject({ type: 'start', servedBy: SELF });
    expect(events.at(-1)).toMatchObject({ type: 'done', servedBy: SELF });
    expect(r.models()).toEqual([
      { id: 'fast', servedBy: [SELF], simulated: true, aliasOf: 'm' },
      { id: 'm', servedBy: [SELF], simulated: true },
    ]);
    expect(r.recentDecisions().at(-1)).toMatchObject({ requested: 'fast', model: 'm', chosen: SELF, runnerUp: null, attempts: 1 });
  });

  it('an alias to a model nobody serves is not listed and answers model-not-found naming both', async () => {
    const r = await router({ policy: policyWith([['big', 'llama3:70b']]) });
    expect(r.models().map((m) => m.id)).toEqual(['m']);
    const err = await drain(r.chat({ model: 'big', messages: [{ role: 'user', content: 'x' }] }, { requestId: 'r' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InferError);
    expect((err as InferError).message).toBe("model 'big' (alias of 'llama3:70b') is not served by any live member");
  });

  it('an alias cycle from an old log is refused with its reason, not looped', async () => {
    const r = await router({ policy: policyWith([['a', 'b'], ['b', 'a']]) });
    expect(() => r.plan('a', 1)).toThrow(/alias that cannot be resolved: alias cycle a -> b -> a/);
  });
});

describe('InferenceRouter: decisions and tokens', () => {
  it('keeps the last RECENT_DECISIONS_MAX decisions with the reason, and counts the tokens it generated', async () => {
    const r = await router({ peers: [remote('other', sampleBody({ models: ['other-model'] }))] });
    for (let i = 0; i < RECENT_DECISIONS_MAX + 6; i++) await drain(r.chat({ model: 'm', messages: [{ role: 'user', content: `request ${i}` }] }, { requestId: `q${i}` }));
    const d = r.recentDecisions();
    expect(d).toHaveLength(RECENT_DECISIONS_MAX);
    expect(d.at(-1)!.reason).toMatch(/^preferred, score \d+\.\d{3} \(load .* battery \d+\.\d{2}\); config defaults$/);
    expect(r.tokensGenerated).toBeGreaterThan(RECENT_DECISIONS_MAX);
  });
});

describe('what a request that fails everywhere answers', () => {
  const peers = ['p1', 'p2', 'p3'].map((p) => remote(p, { ...sampleBody(), models: ['r'] }));
  const failing = (errs: Record<string, InferError>): InferenceRouter =>
    new InferenceRouter({
      localPeerId: SELF,
      backends: null,
      peers: () => peers,
      forward: {
        chat: (peerId: string): AsyncIterable<never> => ({
          [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(errs[peerId]!) }),
        }),
      } as unknown as ForwardClient,
    });
  const codeOf = async (r: InferenceRouter): Promise<string> => {
    try {
      await drain(r.chat({ model: 'r', messages: [{ role: 'user', content: 'x' }] }, { requestId: 'q' }));
    } catch (e) {
      return (e as InferError).code;
    }
    return 'none';
  };
  const transport = (p: string): InferError => new InferError('ERR_FORWARD_REFUSED', `cannot open to ${p}`, { transport: true });
  it('nothing reachable: ERR_UNAVAILABLE (503); a backend failed: ERR_ALL_CANDIDATES_FAILED (502); all busy: ERR_BUSY (429)', async () => {
    expect(await codeOf(failing({ p1: transport('p1'), p2: transport('p2'), p3: transport('p3') }))).toBe('ERR_UNAVAILABLE');
    expect(await codeOf(failing({ p1: transport('p1'), p2: new InferError('ERR_BACKEND', 'HTTP 500'), p3: transport('p3') }))).toBe('ERR_ALL_CANDIDATES_FAILED');
    const busy = new InferError('ERR_BUSY', 'busy');
    expect(await codeOf(failing({ p1: busy, p2: busy, p3: busy }))).toBe('ERR_BUSY');
  });
  it('unsupported somewhere and nothing better elsewhere: that 400; a client error stops at the first candidate', async () => {
    const unsupported = new InferError('ERR_UNSUPPORTED_PARAM', "the ollama backend cannot honour 'logit_bias'", { param: 'logit_bias' });
    expect(await codeOf(failing({ p1: unsupported, p2: transport('p2'), p3: unsupported }))).toBe('ERR_UNSUPPORTED_PARAM');
    const r = failing({ p1: new InferError('ERR_UPSTREAM_CLIENT', 'too long', { status: 400 }), p2: new InferError('ERR_UPSTREAM_CLIENT', 'too long', { status: 400 }), p3: new InferError('ERR_UPSTREAM_CLIENT', 'too long', { status: 400 }) });
    expect(await codeOf(r)).toBe('ERR_UPSTREAM_CLIENT');
    expect(r.recentDecisions().at(-1)!.attempts).toBe(1);
  });
});
