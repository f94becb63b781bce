/**
 * The end-of-soak checker (scripts/soak.sh writes the files it reads into --dir):
 *   node-<i>.audit   consensus audit log of node i (JSON lines {height, round, type, valueId})
 *   status-<i>.json  `fednode status --json` of node i after the run
 *   log-<i>.jsonl    `fednode log --json` pages of node i (one JSON object per line)
 *   acked.txt        `<pattern name> <height> <node>` per acknowledged proposal
 *   unacked.txt      `<pattern name> <node> <exit code>` per proposal not acknowledged
 *   requests.txt     `<start s> <node> <http code> <curl exit> <seconds>` per inference request
 *   rss.txt          `<time s> <node> <pid> <rss KiB>` samples every 15 s
 *   chaos.txt        kills, restarts, partitions and heals with their times
 * Prints a summary (and writes summary.json); exit 1 when a check fails, 2 on bad arguments.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A process younger than this is still loading modules and warming caches: its RSS is not a leak yet. */
const RSS_WARMUP_S = 120;
/** curl's exit status for "no answer within --max-time" (120 s): a stuck request. */
const CURL_TIMEOUT = 28;

interface Args {
  dir: string;
  nodes: number;
  minutes: number;
  kills: number;
  rssGrowthMib: number;
}

function parseArgs(argv: readonly string[]): Args {
  const get = (name: string): string => {
    const i = argv.indexOf(`--${name}`);
    const v = i >= 0 ? argv[i + 1] : undefined;
    if (v === undefined) {
      process.stderr.write(`soak-check: --${name} is required\n`);
      process.exit(2);
    }
    return v;
  };
  const int = (name: string): number => {
    const v = Number(get(name));
    if (!Number.isSafeInteger(v) || v < 0) {
      process.stderr.write(`soak-check: --${name} must be a non-negative integer\n`);
      process.exit(2);
    }
    return v;
  };
  return { dir: get('dir'), nodes: int('nodes'), minutes: int('minutes'), kills: int('kills'), rssGrowthMib: int('rss-growth-mib') };
}

function lines(path: string): string[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '');
}

function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

function main(): void {
  const a = parseArgs(process.argv.slice(2));
  const checks: Check[] = [];
  const nodes = Array.from({ length: a.nodes }, (_, k) => k + 1);

  // 1. Conflicting signatures: the same (height, round, type) signed for two values.
  let signatures = 0;
  const conflicts: string[] = [];
  for (const i of nodes) {
    const seen = new Map<string, string>();
    for (const l of lines(join(a.dir, `node-${i}.audit`))) {
      const r = JSON.parse(l) as { height: number; round: number; type: string; valueId: string | null };
      signatures++;
      const k = `${r.height}/${r.round}/${r.type}`;
      const v = String(r.valueId);
      const before = seen.get(k);
      if (before === undefined) seen.set(k, v);
      else if (before !== v) conflicts.push(`node-${i} ${k}: ${before} vs ${v}`);
    }
  }
  checks.push({ name: 'no conflicting signature', ok: conflicts.length === 0 && signatures > 0, detail: `${signatures} signatures in ${a.nodes} audit logs, ${conflicts.length} conflicts${conflicts.length > 0 ? ': ' + conflicts.slice(0, 5).join('; ') : ''}` });

  // 2. Equal registry hashes at an equal decided height.
  const status = nodes.map((i) => {
    const s = JSON.parse(readFileSync(join(a.dir, `status-${i}.json`), 'utf8')) as { consensus?: { decidedHeight?: number; registryHash?: string } };
    return { i, height: s.consensus?.decidedHeight ?? -1, hash: s.consensus?.registryHash ?? '(no status)' };
  });
  const hashes = new Set(status.map((s) => `${s.height}:${s.hash}`));
  checks.push({ name: 'equal registry hashes', ok: hashes.size === 1 && (status[0]?.height ?? -1) > 0, detail: status.map((s) => `node-${s.i} h${s.height} ${s.hash.slice(0, 16)}`).join(', ') });

  // 3. Every acknowledged proposal in every node's log, at the height its receipt named.
  const acked = lines(join(a.dir, 'acked.txt')).map((l) => {
    const [name, height, node] = l.split(' ');
    return { name: name ?? '', height: Number(height), node: Number(node) };
  });
  const unacked = lines(join(a.dir, 'unacked.txt')).length;
  const missing: string[] = [];
  for (const i of nodes) {
    const byHeight = new Map<number, Set<string>>();
    for (const l of lines(join(a.dir, `log-${i}.jsonl`))) {
      const page = JSON.parse(l) as { entries: Array<{ height: number; ops: Array<{ kind: string; name?: string }> }> };
      for (const e of page.entries) byHeight.set(e.height, new Set(e.ops.filter((o) => o.kind === 'pattern').map((o) => o.name ?? '')));
    }
    for (const p of acked) if (byHeight.get(p.height)?.has(p.name) !== true) missing.push(`${p.name}@${p.height} not in node-${i}`);
  }
  checks.push({ name: 'every acknowledged proposal in every log', ok: missing.length === 0 && acked.length > 0, detail: `${acked.length} acknowledged (${unacked} not acknowledged: timed out or refused during kills and partitions), ${missing.length} missing${missing.length > 0 ? ': ' + missing.slice(0, 5).join('; ') : ''}` });

  // 4. RSS growth per process life, after its warm-up, within the bound.
  const byPid = new Map<string, Array<{ t: number; kib: number; node: number }>>();
  for (const l of lines(join(a.dir, 'rss.txt'))) {
    const [t, node, pid, kib] = l.split(' ').map(Number);
    if (t === undefined || node === undefined || pid === undefined || kib === undefined) continue;
    const k = String(pid);
    const arr = byPid.get(k) ?? [];
    arr.push({ t, kib, node });
    byPid.set(k, arr);
  }
  const growth: Array<{ node: number; pid: string; lifeS: number; fromMib: number; toMib: number; growthMib: number }> = [];
  for (const [pid, s] of byPid) {
    const first = s[0];
    const last = s[s.length - 1];
    if (first === undefined || last === undefined) continue;
    const warm = s.filter((x) => x.t - first.t >= RSS_WARMUP_S);
    const base = warm[0];
    if (base === undefined) continue; // lived less than the warm-up
    growth.push({ node: first.node, pid, lifeS: last.t - first.t, fromMib: base.kib / 1024, toMib: last.kib / 1024, growthMib: (last.kib - base.kib) / 1024 });
  }
  const worst = growth.reduce<(typeof growth)[number] | null>((w, g) => (w === null || g.growthMib > w.growthMib ? g : w), null);
  const longest = growth.reduce<(typeof growth)[number] | null>((w, g) => (w === null || g.lifeS > w.lifeS ? g : w), null);
  checks.push({
    name: `RSS growth <= ${a.rssGrowthMib} MiB per process`,
    ok: growth.length > 0 && (worst?.growthMib ?? 0) <= a.rssGrowthMib,
    detail: `${growth.length} process lives measured; worst node-${worst?.node} +${worst?.growthMib.toFixed(1)} MiB over ${worst?.lifeS} s; longest node-${longest?.node} ${longest?.fromMib.toFixed(1)} -> ${longest?.toMib.toFixed(1)} MiB over ${longest?.lifeS} s`,
  });

  // 5. Stuck requests: no answer within curl's 120 s.
  const reqs = lines(join(a.dir, 'requests.txt')).map((l) => {
    const [t, node, http, exit, secs] = l.split(' ');
    return { t: Number(t), node: Number(node), http: Number(http), exit: Number(exit), secs: Number(secs) };
  });
  const stuck = reqs.filter((r) => r.exit === CURL_TIMEOUT);
  const ok = reqs.filter((r) => r.exit === 0 && r.http === 200);
  const refused = reqs.filter((r) => r.exit === 7).length;
  const cut = reqs.filter((r) => r.exit === 52 || r.exit === 56).length;
  const httpErr = reqs.filter((r) => r.exit === 0 && r.http !== 200);
  const httpCodes = new Map<number, number>();
  for (const r of httpErr) httpCodes.set(r.http, (httpCodes.get(r.http) ?? 0) + 1);
  const otherExit = reqs.filter((r) => r.exit !== 0 && r.exit !== 7 && r.exit !== 52 && r.exit !== 56 && r.exit !== CURL_TIMEOUT).length;
  checks.push({ name: 'zero stuck requests', ok: stuck.length === 0 && ok.length > 0, detail: `${reqs.length} requests: ${ok.length} ok (median ${median(ok.map((r) => r.secs)).toFixed(3)} s, p99 ${quantile(ok.map((r) => r.secs), 0.99).toFixed(3)} s), ${stuck.length} stuck, ${refused} refused (node down), ${cut} cut by a kill, ${httpErr.length} HTTP errors ${JSON.stringify(Object.fromEntries(httpCodes))}, ${otherExit} other curl failures` });

  const chaos = lines(join(a.dir, 'chaos.txt'));
  const summary = {
    minutes: a.minutes,
    nodes: a.nodes,
    kills: a.kills,
    partitions: chaos.filter((l) => l.includes(' partition ')).length,
    decidedHeight: status[0]?.height ?? null,
    acknowledgedProposals: acked.length,
    unacknowledgedProposals: unacked,
    requests: reqs.length,
    requestsOk: ok.length,
    stuck: stuck.length,
    signatures,
    conflicts: conflicts.length,
    rss: growth,
    checks,
  };
  writeFileSync(join(a.dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  process.stdout.write(`soak: ${a.minutes} min, ${a.nodes} nodes, ${a.kills} kill -9 + restart, ${summary.partitions} partitions, decided height ${summary.decidedHeight}\n`);
  for (const c of checks) process.stdout.write(`  ${c.ok ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}\n`);
  process.exit(checks.every((c) => c.ok) ? 0 : 1);
}

main();
