/** How `status` and `doctor` show each backend's health and load (node/backends/backend-set.ts) and power actuation. */
import type { BackendStatus } from '../../node/backends/index.js';
import type { NodeStatus } from '../../node/runtime/node.js';
import type { Check } from './doctor.js';

/** One line per backend: healthy or UNHEALTHY and why, models kept out by the handshake, load and its source. */
export function backendHealthLines(list: readonly BackendStatus[]): string[] {
  return list.map((b) => {
    const state = b.healthy ? 'healthy' : `UNHEALTHY: ${b.reason ?? 'unknown'}`;
    const failed = Object.entries(b.failedModels).map(([m, why]) => `  model ${m} not advertised: ${why}`);
    return [`backend     ${b.id} (${b.kind}) ${state}  in-flight ${b.load.inFlight}/${b.load.capacity} queued ${b.load.queued} [${b.load.source}]`, ...failed].join('\n');
  });
}

/** Doctor's checks for a running node's backends: each unhealthy backend or failed model is a warning that names why. */
export function backendHealthChecks(st: NodeStatus): Check[] {
  const out: Check[] = [];
  for (const b of st.inference.backendHealth ?? []) {
    if (!b.healthy) out.push({ name: `backend ${b.id} health`, status: 'warn', detail: `unhealthy (its models are not advertised): ${b.reason ?? 'unknown'}`, fix: 'check that the server behind it runs and answers; the node re-checks it every health.intervalMs' });
    else out.push({ name: `backend ${b.id} health`, status: 'ok', detail: `healthy, capacity ${b.load.capacity} (${b.load.source})`, fix: null });
    for (const [m, why] of Object.entries(b.failedModels)) out.push({ name: `model ${m}`, status: 'warn', detail: `not advertised: ${why}`, fix: `check that ${b.id} can load and run ${m}` });
  }
  return out;
}

/** The profile line's suffix for power.actuate: limits applied, or why not. */
export function powerText(p: { state: string; detail: string | null; limitsW: Record<string, number> } | null): string {
  if (p === null) return '';
  if (p.state === 'active') return `  GPU limits ${Object.entries(p.limitsW).map(([i, w]) => `gpu ${i} ${w} W`).join(', ')}`;
  return `  power.actuate ${p.state}${p.detail !== null ? `: ${p.detail}` : ''}`;
}
