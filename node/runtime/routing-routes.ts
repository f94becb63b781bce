/**
 * Control API routes of routing (loopback + control token, node/control/server.ts):
 *   GET /routing/route?model=M   -> the ranking this node would use now for M (RouteJson) | 400 | 404 ERR_MODEL_NOT_FOUND
 *   GET /routing/decisions       -> the recent routing decisions (bounded ring, node/forward/router.ts)
 * `fednode route` prints the first; the dashboard (#17) will show the second.
 */
import type { ControlServer } from '../control/server.js';
import type { InferenceRouter, RoutingDecision } from '../forward/router.js';
import { InferError } from '../forward/errors.js';
import type { RankedCandidate } from '../../routing/policy.js';
import { tieHash } from '../../routing/policy.js';
import { describeSource } from '../../routing/in-force.js';
import { badRequest } from './consensus-ops.js';

/** Model ids are at most this long in adverts (node/adverts ADVERT_LIMITS.maxModelChars) and aliases 256. */
const MODEL_PARAM_MAX_CHARS = 256;

export interface RouteJson {
  requested: string;
  model: string;
  /** Aliases followed to reach `model`. */
  via: readonly string[];
  policy: { source: string; registryHeight: number; weights: Record<string, number>; batteryFloorPct: number; tempCeilingC: number; problems: readonly string[] };
  clusterLoad: number;
  lightness: number;
  /** Best first, as a request would try them (ties broken by the request's seed: another request may order equal scores differently). */
  ranked: RankedCandidate[];
  notServing: string[];
}

export function registerRoutingRoutes(control: ControlServer, router: InferenceRouter): void {
  control.route('GET', '/routing/route', (req) => {
    const model = req.query.get('model');
    if (model === null || model === '') throw badRequest('model', 'give the model: /routing/route?model=<model>');
    if (model.length > MODEL_PARAM_MAX_CHARS) throw badRequest('model', `at most ${MODEL_PARAM_MAX_CHARS} characters`);
    try {
      const plan = router.plan(model, tieHash(0, `route ${model}`));
      const p = plan.policy;
      const body: RouteJson = {
        requested: plan.requested,
        model: plan.model,
        via: plan.via,
        policy: { source: describeSource(p.source), registryHeight: p.registryHeight, weights: { ...p.params.weights }, batteryFloorPct: p.params.batteryFloorPct, tempCeilingC: p.params.tempCeilingC, problems: p.problems },
        clusterLoad: plan.ranking.clusterLoad,
        lightness: plan.ranking.lightness,
        ranked: plan.ranking.ranked,
        notServing: plan.ranking.notServing,
      };
      return { body };
    } catch (e) {
      if (e instanceof InferError && e.code === 'ERR_MODEL_NOT_FOUND') return { status: 404, body: { error: { code: e.code, message: e.message, data: e.data } } };
      throw e;
    }
  });
  control.route('GET', '/routing/decisions', () => ({ body: { decisions: router.recentDecisions() satisfies readonly RoutingDecision[] } }));
}
