/**
 * The names of the routing score's weights: the one vocabulary shared by the consensus
 * validity predicate (consensus/registry.ts refuses a `route.policy` naming any other) and the
 * routing policy (routing/policy.ts has exactly one term per name). Both layers may import only
 * base/ and crypto/, so the list lives here, once, like the PRNG both simulators use.
 *
 * Adding a name: add its term to routing/policy.ts (score and `terms`) in the same change; the
 * unit test test/unit/routing/policy.test.ts fails when a name has no term that can move a ranking.
 */

/**
 * - `load`: expected occupancy of the member after this request (requests per slot, queueing costs more);
 * - `latency`: smoothed round-trip time to the member (libp2p ping), per 100 ms;
 * - `power`: energy per token relative to the most efficient candidate, under light cluster load only;
 * - `heat`: GPU temperature within 10 C of the ceiling;
 * - `battery`: running on battery at all (below the floor it is a fallback tier, not a weight).
 */
export const ROUTE_WEIGHT_NAMES = ['load', 'latency', 'power', 'heat', 'battery'] as const;

export type RouteWeightName = (typeof ROUTE_WEIGHT_NAMES)[number];

export function isRouteWeightName(name: string): name is RouteWeightName {
  return (ROUTE_WEIGHT_NAMES as readonly string[]).includes(name);
}
