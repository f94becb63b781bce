/**
 * The policy in force: a PURE function of the decided registry at the node's height plus the
 * node's config defaults. The router and the API read only its result, so every node applies
 * the same policy at the same height, and a new one takes effect as soon as the height that
 * decided it is applied (no restart).
 *
 * Precedence: a `route.policy` decided by the cluster (at any height > 0) wins over the config
 * defaults, entirely: its weights (a weight it does not name takes the built-in default,
 * DEFAULT_ROUTE_WEIGHTS), its battery floor and its temperature ceiling. Until one is decided
 * (the genesis registry's policy, height 0) the node uses its config: `power.batteryFloorPercent`,
 * `power.gpuTempCeilingC` and the built-in weights (equal to the genesis registry's).
 * Aliases exist only in the registry (model.alias), with no config counterpart.
 *
 * Why in routing/ and not node/: this layer may import only base/ and crypto/, so it does not
 * import the Registry type; it declares the few fields it reads (`DecidedRouting`), which
 * consensus/registry.ts's Registry satisfies structurally (node/ passes the registry itself,
 * and the compiler checks the fit there). The vocabulary both sides must agree on, the weight
 * names, lives in base/route-weights.ts.
 */
import { isRouteWeightName, ROUTE_WEIGHT_NAMES } from '../base/route-weights.js';
import type { RouteWeightName } from '../base/route-weights.js';
import { DEFAULT_ROUTE_WEIGHTS, resolveParams } from './policy.js';
import type { PolicyParams, RouteWeights } from './policy.js';

/** What the policy in force reads from the decided registry (consensus/registry.ts Registry has these fields). */
export interface DecidedRouting {
  /** Last decided height the registry reflects. */
  readonly height: number;
  readonly routePolicy: { readonly weights: Readonly<Record<string, number>>; readonly batteryFloorPct: number; readonly temperatureCeilingC: number };
  /** Height that decided `routePolicy`; 0 = the genesis policy (none decided yet). */
  readonly routePolicyHeight: number;
  /** [alias, model], sorted by alias. */
  readonly aliases: readonly (readonly [string, string])[];
}

/** The node's own defaults (config `power.*`), used until the cluster decides a route.policy. */
export interface RoutingDefaults {
  readonly batteryFloorPct: number;
  readonly tempCeilingC: number;
}

export type PolicySource = { readonly kind: 'registry'; readonly height: number } | { readonly kind: 'config' };

/** Where an alias leads: the model it finally names, or why it leads nowhere. */
export type AliasTarget = { readonly ok: true; readonly model: string; readonly via: readonly string[] } | { readonly ok: false; readonly reason: string };

export interface PolicyInForce {
  readonly source: PolicySource;
  /** The registry height this was computed from. */
  readonly registryHeight: number;
  readonly params: PolicyParams;
  /** Each alias with its resolution (chains followed to the end). */
  readonly aliases: ReadonlyMap<string, AliasTarget>;
  /**
   * What of the decided state could not be applied, named (never silently dropped): a weight name
   * the score does not have, or an alias cycle, from a log decided before the validity predicate
   * refused them (replays keep such logs valid and their hashes unchanged).
   */
  readonly problems: readonly string[];
}

/** Human form of the source: what `fednode status` shows. */
export function describeSource(s: PolicySource): string {
  return s.kind === 'registry' ? `route policy from height ${s.height}` : 'config defaults';
}

function resolveAliases(pairs: DecidedRouting['aliases'], problems: string[]): Map<string, AliasTarget> {
  const direct = new Map(pairs);
  const out = new Map<string, AliasTarget>();
  for (const alias of direct.keys()) {
    const via: string[] = [alias];
    let at = direct.get(alias) as string;
    // Each step visits a new alias or stops, so this ends within direct.size steps.
    while (direct.has(at) && !via.includes(at)) {
      via.push(at);
      at = direct.get(at) as string;
    }
    if (via.includes(at)) {
      const reason = `alias cycle ${[...via, at].join(' -> ')}`;
      out.set(alias, { ok: false, reason });
      problems.push(`alias '${alias}' is not applied: ${reason}`);
    } else out.set(alias, { ok: true, model: at, via });
  }
  return out;
}

export function policyInForce(decided: DecidedRouting, defaults: RoutingDefaults): PolicyInForce {
  const problems: string[] = [];
  const fromRegistry = decided.routePolicyHeight > 0;
  const weights: Record<RouteWeightName, number> = { ...DEFAULT_ROUTE_WEIGHTS };
  if (fromRegistry) {
    for (const [name, value] of Object.entries(decided.routePolicy.weights)) {
      if (isRouteWeightName(name)) weights[name] = value;
      else problems.push(`route.policy weight '${name}' is not a weight of the score (known: ${ROUTE_WEIGHT_NAMES.join(', ')}); not applied`);
    }
  }
  const params = resolveParams({
    weights: weights satisfies RouteWeights,
    batteryFloorPct: fromRegistry ? decided.routePolicy.batteryFloorPct : defaults.batteryFloorPct,
    tempCeilingC: fromRegistry ? decided.routePolicy.temperatureCeilingC : defaults.tempCeilingC,
  });
  return {
    source: fromRegistry ? { kind: 'registry', height: decided.routePolicyHeight } : { kind: 'config' },
    registryHeight: decided.height,
    params,
    aliases: resolveAliases(decided.aliases, problems),
    problems,
  };
}

/**
 * The model a request for `model` goes to: itself when it is no alias, else where the alias
 * leads. A decided alias applies even if some member serves a model of that name (the registry
 * is the same on every node, the served models are not); propose refuses such an alias.
 */
export function resolveModel(p: PolicyInForce, model: string): AliasTarget {
  return p.aliases.get(model) ?? { ok: true, model, via: [] };
}
