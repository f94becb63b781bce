/**
 * Health of one backend, as a small state machine fed by results (no clock or I/O of its
 * own: the caller passes `now`). Two inputs, as in Envoy's active health checking and
 * outlier detection:
 *   active   a periodic check (Backend.health, bounded by timeoutMs): `failureThreshold`
 *            consecutive failures make the backend unhealthy, `successThreshold` consecutive
 *            successes make it healthy again;
 *   passive  real requests: `passiveFailures` consecutive upstream failures (unreachable,
 *            timeout, 5xx, broken stream; never the client's own errors) eject it for a
 *            cooldown of cooldownBaseMs x 2^(ejections-1), capped at cooldownMaxMs. A success
 *            after the cooldown resets the ejection count.
 * Plus the optional start handshake: a model that could not answer a 1-token completion is
 * kept out of the advert until a later handshake succeeds.
 */
import { z } from 'zod';

export const healthConfigSchema = z
  .strictObject({
    /** Active check period. @default 10000 (Envoy's common 5-10 s; a model list is cheap) */
    intervalMs: z.number().int().min(100).max(3_600_000).default(10_000),
    /** One active check's time limit. @default 2000 */
    timeoutMs: z.number().int().min(10).max(600_000).default(2000),
    /** Consecutive active failures before unhealthy. @default 3 (one lost check is no outage) */
    failureThreshold: z.number().int().min(1).max(100).default(3),
    /** Consecutive active successes before healthy again. @default 1 */
    successThreshold: z.number().int().min(1).max(100).default(1),
    /** Consecutive failed requests that eject the backend. @default 5 (Envoy's consecutive_5xx) */
    passiveFailures: z.number().int().min(1).max(1000).default(5),
    /** First ejection's cooldown. @default 5000 */
    cooldownBaseMs: z.number().int().min(1).max(3_600_000).default(5000),
    /** Longest cooldown (the backoff cap). @default 300000 (Envoy's max_ejection_time) */
    cooldownMaxMs: z.number().int().min(1).max(86_400_000).default(300_000),
    /** At start (and on each model-list change) ask each model for a 1-token completion; one that cannot answer is not advertised. @default false */
    handshake: z.boolean().default(false),
  })
  .prefault({});

export type HealthConfig = z.output<typeof healthConfigSchema>;
export const DEFAULT_HEALTH_CONFIG: HealthConfig = healthConfigSchema.parse({});

export interface HealthView {
  healthy: boolean;
  /** Why it is unhealthy (or the last problem seen), null when nothing is wrong. */
  reason: string | null;
  /** Ejected by outlier detection until this time (ms, the caller's clock), else null. */
  cooldownUntilMs: number | null;
  /** Models that failed the handshake, with the reason. */
  failedModels: Record<string, string>;
}

/** Models whose handshake failures are remembered (bounded like the node's model list per backend). */
const MAX_FAILED_MODELS = 256;

export class BackendHealth {
  private activeHealthy = true;
  private failures = 0;
  private successes = 0;
  private activeReason: string | null = null;
  private requestFailures = 0;
  private ejections = 0;
  private cooldownUntil: number | null = null;
  private lastRequestError: string | null = null;
  private readonly failedModels = new Map<string, string>();

  constructor(readonly config: HealthConfig) {}

  onActive(ok: boolean, detail: string): void {
    if (ok) {
      this.failures = 0;
      this.successes++;
      if (!this.activeHealthy && this.successes >= this.config.successThreshold) {
        this.activeHealthy = true;
        this.activeReason = null;
      }
    } else {
      this.successes = 0;
      this.failures++;
      this.activeReason = `health check failed ${this.failures}x: ${detail}`;
      if (this.failures >= this.config.failureThreshold) this.activeHealthy = false;
    }
  }

  /** A request's outcome; `upstreamFault` false = the request's own error (aborted, bad params): not counted. */
  onRequest(ok: boolean, now: number, detail = ''): void {
    if (ok) {
      this.requestFailures = 0;
      if (this.cooldownUntil !== null && now >= this.cooldownUntil) {
        this.cooldownUntil = null;
        this.ejections = 0;
      }
      return;
    }
    this.requestFailures++;
    this.lastRequestError = detail;
    if (this.requestFailures >= this.config.passiveFailures) {
      this.ejections++;
      const ms = Math.min(this.config.cooldownMaxMs, this.config.cooldownBaseMs * 2 ** Math.min(30, this.ejections - 1));
      this.cooldownUntil = now + ms;
      this.requestFailures = 0;
    }
  }

  onHandshake(model: string, ok: boolean, detail: string): void {
    if (ok) this.failedModels.delete(model);
    else if (this.failedModels.has(model) || this.failedModels.size < MAX_FAILED_MODELS) this.failedModels.set(model, detail);
  }

  view(now: number): HealthView {
    const inCooldown = this.cooldownUntil !== null && now < this.cooldownUntil;
    let reason: string | null = null;
    if (!this.activeHealthy) reason = this.activeReason;
    else if (inCooldown) reason = `ejected after ${this.config.passiveFailures} consecutive failed requests (ejection ${this.ejections}, cooldown until +${Math.round(((this.cooldownUntil ?? now) - now) / 1000)} s): ${this.lastRequestError ?? ''}`;
    return { healthy: this.activeHealthy && !inCooldown, reason, cooldownUntilMs: inCooldown ? this.cooldownUntil : null, failedModels: Object.fromEntries(this.failedModels) };
  }
}
