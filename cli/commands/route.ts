/**
 * `fednode route --model M [--json]`: the ranking the running node would use now for M, best
 * first: each candidate's score and its terms (load, latency, energy, heat, battery), its tier
 * and any fallback reason, and where the policy in force comes from (a decided height or the
 * config defaults). Reads GET /routing/route on the control API (node/runtime/routing-routes.ts).
 */
import type { Command } from '../command.js';
import { flagString } from '../command.js';
import { UsageError } from '../args.js';
import type { RouteJson } from '../../node/runtime/routing-routes.js';
import { answered } from './consensus-common.js';
import { num, shortId, table } from './format.js';

export function routeText(r: RouteJson): string {
  const p = r.policy;
  const weights = Object.entries(p.weights).map(([k, v]) => `${k}=${v}`).join(' ');
  const head = [
    `model       ${r.requested}${r.via.length > 0 ? ` -> ${r.model} (alias${r.via.length > 1 ? ` chain ${r.via.join(' -> ')}` : ''})` : ''}`,
    `policy      ${p.source}  weights ${weights}  battery floor ${p.batteryFloorPct}%  temp ceiling ${p.tempCeilingC} C`,
    `cluster     load ${num(r.clusterLoad * 100, 0, '%')}  energy term at ${num(r.lightness * 100, 0, '%')} (full under light load, off under heavy)`,
    ...p.problems.map((x) => `problem     ${x}`),
  ];
  if (r.ranked.length === 0) return [...head, `no live member serves '${r.model}'${r.notServing.length > 0 ? ` (${r.notServing.length} member(s) serve other models)` : ''}`].join('\n') + '\n';
  const rows = r.ranked.map((c, i) => [
    String(i + 1),
    `${shortId(c.peerId)}${c.isLocal ? ' (self)' : ''}`,
    c.tier,
    c.score.toFixed(3),
    c.terms.load.toFixed(3),
    c.terms.latency.toFixed(3),
    c.terms.energy.toFixed(3),
    c.terms.heat.toFixed(3),
    c.terms.battery.toFixed(3),
    `${num(c.estimatedLoad, 1)}/${c.capacity}`,
    `${num(c.rttMs, 1)} ms${c.rttSource === 'measured' || c.rttSource === 'local' ? '' : ` (${c.rttSource})`}`,
    `${num(c.joulesPerToken, 2)} J${c.energySource === 'measured' ? '' : ' (default)'}`,
    c.reasons.join('; '),
  ]);
  return head.join('\n') + '\n\n' + table(['#', 'node', 'tier', 'score', 'load', 'latency', 'energy', 'heat', 'battery', 'est/cap', 'rtt', 'J/token', 'fallback reason'], rows);
}

export const routeCommand: Command = {
  name: 'route',
  flags: [{ name: 'model', short: 'm', type: 'string', placeholder: '<model>', description: 'model id or alias (see `fednode models`)' }],
  positionals: [],
  details: [
    'example: fednode route --model simulated-7b',
    'Lower scores win; fallback members are tried only after every preferred one. Equal scores',
    '(within 2 %) are ordered per request by a hash of its id, so two requests may differ there.',
  ].join('\n'),
  async run(ctx) {
    const model = flagString(ctx.args, 'model');
    if (model === undefined || model === '') throw new UsageError('route needs --model <model> (list them with `fednode models`)', 'route');
    const client = await ctx.control();
    const r = await answered(() => client.get<RouteJson>(`/routing/route?model=${encodeURIComponent(model)}`));
    ctx.result(r, routeText(r));
    return 0;
  },
};
