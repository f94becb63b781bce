/**
 * `fednode top`: the dashboard's live data in a terminal (issue 17), for machines without a
 * browser. Reads the same snapshot the page shows (control `GET /dashboard`, node/dashboard/)
 * every --interval and redraws in place (ANSI: cursor home, clear); `--once` prints one frame
 * without escape codes and exits (scripts, tests); `--json` with --once prints the snapshot.
 */
import type { Command } from '../command.js';
import { flagBool, flagNumber } from '../command.js';
import { UsageError } from '../args.js';
import type { DashboardSnapshot, NodeRow } from '../../node/dashboard/snapshot.js';
import { ago, num, shortId, table } from './format.js';

const BLOCKS = '▁▂▃▄▅▆▇█';
/** Points in a sparkline: the last 30 samples (1 minute at the history's 2 s). */
const SPARK_POINTS = 30;
/** The shortest refresh: each frame is one control request and a snapshot build on the node. */
const INTERVAL_MIN_MS = 250;

export function sparkline(values: readonly (number | null)[], max: number | null = null): string {
  const vs = values.slice(-SPARK_POINTS);
  const top = max ?? Math.max(0, ...vs.flatMap((v) => (v === null ? [] : [v])));
  return vs.map((v) => (v === null ? ' ' : BLOCKS[top <= 0 ? 0 : Math.min(BLOCKS.length - 1, Math.round((v / top) * (BLOCKS.length - 1)))])).join('');
}

function gpuCell(n: NodeRow): string {
  if (n.gpus.length === 0) return '-';
  return n.gpus.map((g) => `${num(g.utilizationPct, 0, '%')} ${num(g.temperatureC, 0, 'C')} ${num(g.powerDrawW, 0)}/${num(g.powerLimitW, 0)}W ${num(g.memoryUsedMiB === null ? null : g.memoryUsedMiB / 1024, 1)}/${num(g.memoryTotalMiB === null ? null : g.memoryTotalMiB / 1024, 1)}G`).join(' | ');
}

/** One frame of `top`, plain text (no escape codes). */
export function renderTop(s: DashboardSnapshot, width = 160): string {
  const names = new Map(s.nodes.map((n) => [n.peerId, n.name]));
  const nameOf = (id: string | null): string => (id === null ? '-' : (names.get(id) ?? shortId(id)));
  const c = s.consensus;
  const t = s.traffic;
  const live = s.nodes.filter((n) => n.state === 'live').length;
  const head = [
    `fednode top  cluster ${s.self.cluster}  seen from ${s.self.name}  ${new Date(s.atMs).toISOString()}`,
    `members ${live} live of ${s.nodes.length}   consensus height ${c.height} round ${c.round} ${c.step}  decided ${c.decidedHeight}${c.lastDecidedMs !== null ? ` ${ago(s.atMs - c.lastDecidedMs)} ago` : ''}  validators ${c.validators.map((v) => `${v.name}:${v.power}`).join(' ')}`,
    `registry ${c.registryHash.slice(0, 16)}…  route policy: ${c.routing.sourceText}${c.pending.length > 0 ? `  pending: ${c.pending.map((p) => `${p.kind} ${p.name ?? shortId(p.peerId)} @${p.effectiveHeight}`).join(', ')}` : ''}`,
    `traffic (routed here, ${t.windowMs / 1000}s) ${num(t.reqPerS, 2)} req/s  ${num(t.tokensOutPerS, 1)} tok/s  TTFT p50 ${num(t.ttftMsP50, 0, ' ms')}  total ${t.totals.requests}  failovers ${t.totals.failovers}  429 ${t.totals.busy}  errors ${t.totals.errors}`,
    '',
  ];
  const rows = s.nodes.map((n) => {
    const hist = s.history.series[n.peerId] ?? [];
    return [
      n.name + (n.self ? '*' : ''),
      n.state.toUpperCase(),
      n.self ? 'self' : !n.connected ? 'no link' : n.rttMs === null ? 'up' : `${num(n.rttMs, 0)}ms`,
      `${n.inFlight ?? '-'}/${n.queued ?? '-'}/${n.capacity ?? '-'}`,
      num(n.reqPerS, 1),
      num(n.tokensPerS, 1),
      `${n.profile ?? '-'}${n.profilePinned ? '(pin)' : ''}`,
      n.power === null || n.power.source === null ? '-' : `${n.power.source}${n.power.batteryPct !== null ? ` ${n.power.batteryPct}%` : ''}`,
      gpuCell(n),
      sparkline(hist.map((p) => p.load), 1),
      n.models.join(',') || '-',
    ];
  });
  const body = table(['NODE', 'STATE', 'LINK', 'RUN/Q/CAP', 'REQ/S', 'TOK/S', 'PROFILE', 'POWER', 'GPU util temp W mem', 'LOAD (1 min)', 'MODELS'], rows);
  const decisions = t.decisions.slice(-8).reverse().map((d) => [new Date(d.atMs).toISOString().slice(11, 19), d.requested === d.model ? d.model : `${d.requested}->${d.model}`, nameOf(d.chosen), nameOf(d.runnerUp), String(d.attempts), d.reason]);
  const tail = decisions.length === 0 ? 'no routing decisions yet\n' : table(['TIME', 'MODEL', 'CHOSEN', 'RUNNER-UP', 'TRIES', 'REASON'], decisions);
  return [...head, body, 'recent routing decisions', tail].map((l) => l.split('\n').map((x) => (x.length > width ? x.slice(0, width - 1) + '…' : x)).join('\n')).join('\n');
}

export const topCommand: Command = {
  name: 'top',
  flags: [
    { name: 'interval', type: 'duration', placeholder: '<duration>', description: 'refresh period', defaultText: '1s' },
    { name: 'once', type: 'boolean', description: 'print one frame (no escape codes) and exit' },
  ],
  positionals: [],
  details: 'The browser version is <api url>/dashboard/ on any node.',
  async run(ctx) {
    const intervalMs = flagNumber(ctx.args, 'interval') ?? 1000;
    if (intervalMs < INTERVAL_MIN_MS) throw new UsageError(`--interval must be at least ${INTERVAL_MIN_MS}ms`, 'top');
    const client = await ctx.control();
    const width = (): number => process.stdout.columns ?? 160;
    if (flagBool(ctx.args, 'once') === true || ctx.json) {
      const s = await client.get<DashboardSnapshot>('/dashboard');
      ctx.result(s, renderTop(s, width()) + '\n');
      return 0;
    }
    let stop = false;
    const quit = (): void => {
      stop = true;
    };
    process.on('SIGINT', quit);
    process.on('SIGTERM', quit);
    try {
      while (!stop) {
        let frame: string;
        try {
          frame = renderTop(await client.get<DashboardSnapshot>('/dashboard', { timeoutMs: 5000 }), width());
        } catch (e) {
          frame = `fednode top: the node does not answer (${e instanceof Error ? e.message : String(e)}); retrying every ${intervalMs} ms`;
        }
        ctx.out(`\x1b[H\x1b[2J${frame}\n`);
        await new Promise((r) => setTimeout(r, intervalMs));
      }
      ctx.out('\n');
      return 0;
    } finally {
      process.off('SIGINT', quit);
      process.off('SIGTERM', quit);
    }
  },
};
