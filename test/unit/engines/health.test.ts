// Backend health state machine: active thresholds, passive ejection with capped exponential cooldown, handshake.
import { describe, it, expect } from 'vitest';
import { BackendHealth, healthConfigSchema } from '../../../node/backends/health.js';

const cfg = (over: Record<string, unknown> = {}) => healthConfigSchema.parse({ failureThreshold: 2, successThreshold: 2, passiveFailures: 3, cooldownBaseMs: 1000, cooldownMaxMs: 3000, ...over });

describe('BackendHealth', () => {
  it('turns unhealthy after failureThreshold consecutive failed checks and back after successThreshold', () => {
    const h = new BackendHealth(cfg());
    h.onActive(false, 'connection refused');
    expect(h.view(0).healthy).toBe(true); // one lost check is no outage
    h.onActive(true, 'ok');
    h.onActive(false, 'connection refused');
    expect(h.view(0).healthy).toBe(true); // not consecutive
    h.onActive(false, 'connection refused');
    expect(h.view(0)).toMatchObject({ healthy: false, reason: 'health check failed 2x: connection refused' });
    h.onActive(true, 'ok');
    expect(h.view(0).healthy).toBe(false);
    h.onActive(true, 'ok');
    expect(h.view(0)).toMatchObject({ healthy: true, reason: null });
  });

  it('ejects after consecutive request failures, with a cooldown that doubles and is capped', () => {
    const h = new BackendHealth(cfg());
    const fail = (now: number): void => {
      for (let i = 0; i < 3; i++) h.onRequest(false, now, 'HTTP 500');
    };
    h.onRequest(false, 0, 'HTTP 500');
    h.onRequest(false, 0, 'HTTP 500');
    h.onRequest(true, 0);
    h.onRequest(false, 0, 'HTTP 500');
    expect(h.view(0).healthy).toBe(true); // a success in between resets the count
    fail(0);
    expect(h.view(999)).toMatchObject({ healthy: false, cooldownUntilMs: 1000 });
    expect(h.view(999).reason).toMatch(/ejected after 3 consecutive failed requests \(ejection 1/);
    expect(h.view(1000).healthy).toBe(true); // cooldown over: tried again
    fail(1000);
    expect(h.view(1000).cooldownUntilMs).toBe(3000); // 2 x 1000
    fail(3000);
    expect(h.view(3000).cooldownUntilMs).toBe(6000); // 4 x 1000 capped at 3000
    h.onRequest(true, 6000); // a success after the cooldown resets the ejection count
    fail(6000);
    expect(h.view(6000).cooldownUntilMs).toBe(7000);
  });

  it('remembers models that failed the handshake until one succeeds', () => {
    const h = new BackendHealth(cfg());
    h.onHandshake('a', false, 'handshake failed: 500');
    expect(h.view(0).failedModels).toEqual({ a: 'handshake failed: 500' });
    expect(h.view(0).healthy).toBe(true);
    h.onHandshake('a', true, '');
    expect(h.view(0).failedModels).toEqual({});
  });

  it('rejects unknown health fields by name', () => {
    expect(healthConfigSchema.safeParse({ intervalMS: 5 }).success).toBe(false);
  });
});
