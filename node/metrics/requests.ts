/**
 * The narrow observer of routed inference requests (issue 17): one `RequestObservation` per
 * request when it ends, for the Prometheus series (node/metrics/inference.ts) and the
 * dashboard's traffic panel (node/dashboard/traffic.ts).
 *
 * It watches the router from outside: `observedRouter(router, observers)` is the router seen
 * through a Proxy whose `chat` wraps the event stream (start, deltas, done, or a thrown
 * InferError) and whose every other member is the router's own. The HTTP API is given the
 * observed router, so node/api and node/forward need no change to be measured, and an
 * endpoint added to the router later keeps working (unobserved until it is wrapped here).
 */
import type { RoutedEvent } from '../forward/router.js';

export type RequestOutcome = 'ok' | 'error' | 'busy' | 'aborted';

export interface RequestObservation {
  /** The model the caller asked for. */
  readonly model: string;
  /** Peer id of the member that served it (null when no candidate produced output). */
  readonly servedBy: string | null;
  readonly outcome: RequestOutcome;
  /** InferError code (or 'internal') when outcome is not ok. */
  readonly errorCode: string | null;
  /** Candidates tried; above 1 = failovers happened before the first token. */
  readonly attempts: number;
  /** Time to the first content delta seen by the router, ms (null when none came). */
  readonly ttftMs: number | null;
  readonly durationMs: number;
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** Unix ms when the request ended. */
  readonly endMs: number;
}

export type RequestObserver = (o: RequestObservation) => void;

/** A bounded set of observers; one that throws breaks neither the request nor the other observers. */
export class RequestObservers {
  private readonly list = new Set<RequestObserver>();
  /** Observers attached at once: dashboard, metrics, `top`'s feed; 16 is far above that. */
  static readonly MAX = 16;

  add(fn: RequestObserver): () => void {
    if (this.list.size >= RequestObservers.MAX) throw new RangeError(`at most ${RequestObservers.MAX} request observers`);
    this.list.add(fn);
    return () => {
      this.list.delete(fn);
    };
  }

  emit(o: RequestObservation): void {
    for (const fn of this.list) {
      try {
        fn(o);
      } catch {
        // An observer's bug must not fail the request it watches.
      }
    }
  }

  get size(): number {
    return this.list.size;
  }
}

function codeOf(err: unknown): string {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : 'internal';
}

/** Wrap one routed event stream: pass every event through unchanged, report once at the end. */
export async function* observeChat(events: AsyncIterable<RoutedEvent>, model: string, observers: RequestObservers, now: () => number): AsyncIterable<RoutedEvent> {
  const startMs = now();
  let servedBy: string | null = null;
  let attempts = 0;
  let ttftMs: number | null = null;
  let promptTokens = 0;
  let completionTokens = 0;
  let outcome: RequestOutcome = 'ok';
  let errorCode: string | null = null;
  let finished = false;
  try {
    for await (const ev of events) {
      if (ev.type === 'start') {
        servedBy = ev.servedBy;
        attempts = ev.attempts;
      } else if (ev.type === 'delta') {
        ttftMs ??= now() - startMs;
      } else {
        servedBy = ev.servedBy;
        promptTokens = ev.usage.promptTokens;
        completionTokens = ev.usage.completionTokens;
        ttftMs ??= ev.timings.firstTokenMs;
        finished = true;
      }
      yield ev;
    }
    if (!finished) {
      outcome = 'error';
      errorCode = 'ERR_UPSTREAM_MID_STREAM';
    }
  } catch (err) {
    errorCode = codeOf(err);
    outcome = errorCode === 'ERR_BUSY' ? 'busy' : errorCode === 'ERR_ABORTED' ? 'aborted' : 'error';
    const failures = (err as { data?: { failures?: unknown } } | null)?.data?.failures;
    if (attempts === 0 && Array.isArray(failures)) attempts = failures.length;
    throw err;
  } finally {
    // A consumer that stops iterating early (client went away) lands here without an error.
    if (!finished && errorCode === null) {
      outcome = 'aborted';
      errorCode = 'ERR_ABORTED';
    }
    const endMs = now();
    observers.emit({ model, servedBy, outcome, errorCode, attempts, ttftMs, durationMs: endMs - startMs, promptTokens, completionTokens, endMs });
  }
}

interface ChatLike {
  chat(req: { model: string }, call: never): AsyncIterable<RoutedEvent>;
}

/**
 * The router as the API should see it: `chat` observed, everything else the router's own
 * (methods bound to the router, getters read live).
 */
export function observedRouter<R extends ChatLike>(router: R, observers: RequestObservers, now: () => number = Date.now): R {
  const chat = (req: { model: string }, call: never): AsyncIterable<RoutedEvent> => observeChat(router.chat(req, call), req.model, observers, now);
  return new Proxy(router, {
    get(target, key) {
      if (key === 'chat') return chat;
      const v: unknown = Reflect.get(target, key, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
