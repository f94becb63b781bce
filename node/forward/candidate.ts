/**
 * One conversion from an advert body to what the routing policy reads (routing/policy.ts
 * AdvertLoad), used for a remote member's latest advert AND for this node's own readings:
 * the node itself is ranked through exactly the code a remote member goes through, so a
 * laptop on 10 % battery or an 89 C GPU is avoided whether the request arrived on it or not.
 */
import type { AdvertBody } from '../adverts/advert.js';
import type { AdvertLoad } from '../../routing/policy.js';

export function advertLoadOf(body: AdvertBody, ageMs: number): AdvertLoad {
  const temps = body.gpus.map((g) => g.temperatureC).filter((t): t is number => t !== null);
  const utils = body.gpus.map((g) => g.utilizationPct).filter((t): t is number => t !== null);
  return {
    inFlight: body.inFlight,
    queued: body.queued,
    capacity: Math.max(1, body.capacity),
    // the hottest / busiest GPU decides: one GPU at its ceiling throttles the model split over it
    gpuTempC: temps.length > 0 ? Math.max(...temps) : null,
    gpuUtilPct: utils.length > 0 ? Math.max(...utils) : null,
    powerSource: body.power.source ?? 'unknown',
    batteryPct: body.power.batteryPct,
    profile: body.profile,
    joulesPerToken: body.joulesPerToken,
    ageMs,
  };
}
