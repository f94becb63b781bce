import '../node/polyfill.js';
// `npm run bench -- infer [--json] [--rounds=3] [--tokens=16] [--levels=1,16,64,256] [--paths=direct,local,forwarded,nginx]`
// Loopback, simulated backend in zero-delay mode. Node B (with the bare backend server) and node A
// each run in their own process (bench/infer-child.ts): the client's CPU is not theirs and A and B
// do not share an event loop (as deployed). Same client (fetch = undici, keep-alive, streaming SSE), same
// request, for each concurrency level (streams at once):
//   (a) backend direct: the simulated backend behind a bare HTTP/SSE server
//   (b) node API, local execution
//   (c) node A's API forwarded over libp2p (noise + yamux) to node B
//   (d) nginx (/usr/sbin/nginx) as a reverse proxy in front of the same bare server: the yardstick
//       for what a proxy costs on this machine (its own temp prefix, loopback only, workers = cores)
// Per path and level: req/s, tokens/s, latency and time to first token p50/p99, the latency added
// over (a), server-side CPU ms per request (process.cpuUsage of B's process, plus A's for (c); for (d) plus nginx's
// master and workers from /proc/<pid>/stat), and ratios to nginx. Each figure is the median over
// --rounds sweeps; paths are interleaved within a level so load changes hit all of them alike.
// Plus the routing balance figures (simulation).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Agent, fetch } from 'undici';
import { ROUTING_POLICIES, runRoutingComparison } from '../simnet/routing.js';
import type { RoutingComparison, RoutingPolicyName } from '../simnet/routing.js';

const NGINX = '/usr/sbin/nginx';
/**
 * The client: undici, keep-alive, at most 256 connections per origin (the node API's per-address
 * limit). A fresh one per measurement (warmed up first), so no connection idles across paths into
 * a server's idle/header timeout.
 */
const newClient = (): Agent => new Agent({ connections: 256, keepAliveTimeout: 30_000 });
const PATHS = ['direct', 'local', 'forwarded', 'nginx'] as const;
type PathName = (typeof PATHS)[number];
const LABEL: Record<PathName, string> = { direct: '(a) backend direct', local: '(b) node API local', forwarded: '(c) forwarded A->B', nginx: '(d) nginx -> backend' };

interface One {
  ms: number;
  ttftMs: number;
  tokens: number;
}

interface Row {
  requestsPerS: number;
  tokensPerS: number;
  p50Ms: number;
  p99Ms: number;
  ttftP50Ms: number;
  ttftP99Ms: number;
  cpuMsPerRequest: number;
  /** The bench client's own CPU (this process: undici, SSE parsing) per request: it shares the 2 cores with the servers. */
  clientCpuMsPerRequest: number;
}

function quantile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}
const median = (xs: readonly number[]): number => quantile(xs, 50);

function arg(args: readonly string[], name: string, def: string): string {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? def : a.slice(name.length + 3);
}
function numArg(args: readonly string[], name: string, def: number): number {
  const v = Number(arg(args, name, String(def)));
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number, got ${arg(args, name, '')}`);
  return v;
}

/** One streamed chat completion: total time, time to the first content chunk, completion tokens (from the usage chunk). */
async function streamOnce(client: Agent, url: string, body: string): Promise<One> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, dispatcher: client });
  if (res.status !== 200 || res.body === null) throw new Error(`${url}: HTTP ${res.status}: ${await res.text()}`);
  const dec = new TextDecoder();
  let text = '';
  let ttftMs = NaN;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    text += dec.decode(chunk, { stream: true });
    if (Number.isNaN(ttftMs) && text.includes('"content":"', text.indexOf('"content":""') + 1)) ttftMs = performance.now() - t0;
  }
  const ms = performance.now() - t0;
  if (!text.endsWith('data: [DONE]\n\n')) throw new Error(`${url}: stream did not end with [DONE]`);
  const m = /"completion_tokens":(\d+)/.exec(text);
  if (m === null) throw new Error(`${url}: no usage chunk`);
  return { ms, ttftMs, tokens: Number(m[1]) };
}

/** CPU seconds (user + system) of a process and its children threads, from /proc/<pid>/stat. */
function procCpuUs(pid: number): number {
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  // fields after the name: state(3) ... utime(14) stime(15): index 11 and 12 here
  return ((Number(f[11]) + Number(f[12])) / 100) * 1e6; // CLK_TCK = 100 on Linux
}

interface Nginx {
  url: string;
  cpuUs(): number;
  stop(): void;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Starts Debian's nginx in front of `upstream` (own prefix and conf under a temp dir), or says why not. */
async function startNginx(upstream: string, workers: number): Promise<Nginx | string> {
  if (!existsSync(NGINX)) return `${NGINX} not installed (apt-get install -y nginx): path (d) skipped`;
  const dir = mkdtempSync(join(tmpdir(), 'fednode-bench-nginx-'));
  const port = await freePort();
  const up = new URL(upstream);
  const conf = [
    `worker_processes ${workers};`,
    'daemon off;',
    'master_process on;',
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log warn;`,
    process.getuid?.() === 0 ? 'user root;' : '',
    'events { worker_connections 4096; }',
    'http {',
    '  access_log off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${dir}/${t};`),
    '  keepalive_requests 1000000;',
    // keep-alive to the upstream: as the node's HTTP client and libp2p streams, no connect per request
    `  upstream backend { server ${up.hostname}:${up.port}; keepalive 512; }`,
    `  server { listen 127.0.0.1:${port}; location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; } }`,
    '}',
  ].join('\n');
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const p: ChildProcess = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  const url = `http://127.0.0.1:${port}`;
  const stop = (): void => {
    p.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 100; i++) {
    // up to 5 s for nginx to listen
    if (p.exitCode !== null) break;
    const ok = await fetch(`${url}/`).then(
      async (r) => (await r.arrayBuffer(), true),
      () => false,
    );
    if (ok) {
      const pid = p.pid!;
      const children = (): number[] =>
        readdirSync(`/proc/${pid}/task`).flatMap((t) =>
          readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8')
            .split(' ')
            .filter((x) => x !== '')
            .map(Number),
        );
      return { url, cpuUs: () => [pid, ...children()].reduce((a, q) => a + procCpuUs(q), 0), stop };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  stop();
  return `nginx did not start: ${err.trim() || 'no listener within 5 s'}: path (d) skipped`;
}

interface Child {
  ask<T>(m: Record<string, unknown>): Promise<T>;
  cpuUs(): Promise<number>;
  stop(): Promise<void>;
}

function spawnChild(): Child {
  const entry = fileURLToPath(new URL('./infer-child.ts', import.meta.url));
  // INFER_PROF_DIR=<dir>: each server process writes a V8 CPU profile there (profiling the data plane)
  const prof = process.env['INFER_PROF_DIR'];
  const p = spawn(process.execPath, [...process.execArgv, ...(prof === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${prof}`]), entry], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let exited = false;
  p.once('exit', () => (exited = true));
  const ask = <T>(m: Record<string, unknown>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (exited) return reject(new Error('bench/infer-child.ts has exited'));
      const onExit = (code: number | null): void => reject(new Error(`bench/infer-child.ts exited (${code}) before answering '${String(m['t'])}'`));
      p.once('exit', onExit);
      p.once('message', (r: T) => {
        p.off('exit', onExit);
        resolve(r);
      });
      p.send(m);
    });
  return {
    ask,
    cpuUs: async () => (await ask<{ us: number }>({ t: 'cpu' })).us,
    stop: () =>
      new Promise<void>((resolve) => {
        if (exited) return resolve();
        p.once('exit', () => resolve());
        p.send({ t: 'stop' });
      }),
  };
}

interface Servers {
  bareUrl: string;
  localUrl: string;
  forwardUrl: string;
  /** Node B's process: bare backend server and node B. */
  b: Child;
  /** Node A's process. */
  a: Child;
  stop(): Promise<void>;
}

/** Node B (with the bare backend server) and node A, each in its own process; A dials B. */
async function startServers(): Promise<Servers> {
  const b = spawnChild();
  const a = spawnChild();
  try {
    const rb = await b.ask<{ url: string; bareUrl: string; peerId: string; addrs: string[] }>({ t: 'init', role: 'B' });
    const ra = await a.ask<{ url: string }>({ t: 'init', role: 'A', peerId: rb.peerId, addrs: rb.addrs });
    return { bareUrl: rb.bareUrl, localUrl: rb.url, forwardUrl: ra.url, a, b, stop: async () => void (await Promise.all([a.stop(), b.stop()])) };
  } catch (err) {
    await Promise.all([a.stop(), b.stop()]);
    throw err;
  }
}

/** `total` requests with `concurrency` in flight, after a warm-up; server CPU measured around the timed part. */
async function measure(url: string, body: string, concurrency: number, total: number, cpuUs: () => Promise<number>): Promise<Row> {
  const client = newClient();
  const run = async (count: number, out: One[]): Promise<void> => {
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count) {
          next++;
          out.push(await streamOnce(client, url, body));
        }
      }),
    );
  };
  await run(Math.max(50, concurrency * 2), []); // warm-up: JIT, connections, kept-alive streams
  const ones: One[] = [];
  const cpu0 = await cpuUs();
  const own0 = process.cpuUsage();
  const t0 = performance.now();
  await run(total, ones);
  const s = (performance.now() - t0) / 1000;
  const own = process.cpuUsage(own0);
  const cpu = (await cpuUs()) - cpu0;
  await client.close();
  const ms = ones.map((o) => o.ms);
  const ttft = ones.map((o) => o.ttftMs);
  return {
    requestsPerS: total / s,
    tokensPerS: ones.reduce((a, o) => a + o.tokens, 0) / s,
    p50Ms: quantile(ms, 50),
    p99Ms: quantile(ms, 99),
    ttftP50Ms: quantile(ttft, 50),
    ttftP99Ms: quantile(ttft, 99),
    cpuMsPerRequest: cpu / 1000 / total,
    clientCpuMsPerRequest: (own.user + own.system) / 1000 / total,
  };
}

/** 1-minute load average per core: above ~1 other processes compete for the CPU and every wall-clock figure grows. */
function loadPerCore(): number {
  return loadavg()[0]! / Math.max(1, availableParallelism());
}

type Sweep = Record<number, Partial<Record<PathName, Row>>>;

async function sweeps(srv: Servers, nginx: Nginx | null, levels: readonly number[], rounds: number, body: string, only: ReadonlySet<string>): Promise<Sweep> {
  const url: Record<PathName, string> = { direct: srv.bareUrl, local: srv.localUrl, forwarded: srv.forwardUrl, nginx: nginx?.url ?? '' };
  // CPU of the processes each path runs through: B's (backend server, node B), plus A's or nginx's
  const cpu: Record<PathName, () => Promise<number>> = {
    direct: () => srv.b.cpuUs(),
    local: () => srv.b.cpuUs(),
    forwarded: async () => (await srv.a.cpuUs()) + (await srv.b.cpuUs()),
    nginx: async () => (await srv.b.cpuUs()) + (nginx?.cpuUs() ?? 0),
  };
  const all: Record<number, Partial<Record<PathName, Row[]>>> = {};
  for (let r = 0; r < rounds; r++) {
    for (const c of levels) {
      for (const p of PATHS) {
        if ((p === 'nginx' && nginx === null) || !only.has(p)) continue;
        const row = await measure(url[p], body, c, Math.max(400, c * 8), cpu[p]);
        ((all[c] ??= {})[p] ??= []).push(row);
      }
    }
  }
  const out: Sweep = {};
  for (const c of levels) {
    for (const p of PATHS) {
      const rows = all[c]?.[p];
      if (rows === undefined) continue;
      const med = (k: keyof Row): number => median(rows.map((x) => x[k]));
      (out[c] ??= {})[p] = { requestsPerS: med('requestsPerS'), tokensPerS: med('tokensPerS'), p50Ms: med('p50Ms'), p99Ms: med('p99Ms'), ttftP50Ms: med('ttftP50Ms'), ttftP99Ms: med('ttftP99Ms'), cpuMsPerRequest: med('cpuMsPerRequest'), clientCpuMsPerRequest: med('clientCpuMsPerRequest') };
    }
  }
  return out;
}

function derived(sw: Sweep, levels: readonly number[]): Record<number, Record<string, unknown>> {
  const out: Record<number, Record<string, unknown>> = {};
  for (const c of levels) {
    const at = sw[c] ?? {};
    const a = at.direct;
    const n = at.nginx;
    const paths: Record<string, unknown> = {};
    for (const p of PATHS) {
      const r = at[p];
      if (r === undefined || a === undefined) continue;
      paths[p] = {
        ...r,
        addedP50Ms: r.p50Ms - a.p50Ms,
        addedP99Ms: r.p99Ms - a.p99Ms,
        ...(n === undefined ? {} : { throughputOverNginx: r.requestsPerS / n.requestsPerS, cpuOverNginx: r.cpuMsPerRequest / n.cpuMsPerRequest }),
      };
    }
    const l = at.local;
    const f = at.forwarded;
    out[c] = { paths, forwardedOverLocalThroughput: f !== undefined && l !== undefined ? f.requestsPerS / l.requestsPerS : null, forwardedMinusLocalTtftP50Ms: f !== undefined && l !== undefined ? f.ttftP50Ms - l.ttftP50Ms : null };
  }
  return out;
}

function print(d: Record<number, Record<string, unknown>>, levels: readonly number[]): void {
  const f = (x: unknown, digits = 2): string => (typeof x === 'number' ? x.toFixed(digits) : '-');
  console.log('path                  conc   req/s   tok/s  p50 ms  p99 ms  +p50 ms  +p99 ms  ttft50  cpu ms/req  x nginx req/s  x nginx cpu');
  for (const c of levels) {
    const row = d[c]!;
    for (const p of PATHS) {
      const r = (row['paths'] as Record<string, Record<string, number> | undefined>)[p];
      if (r === undefined) continue;
      console.log(
        `${LABEL[p].padEnd(21)} ${String(c).padStart(4)} ${f(r['requestsPerS'], 0).padStart(7)} ${f(r['tokensPerS'], 0).padStart(7)} ${f(r['p50Ms']).padStart(7)} ${f(r['p99Ms']).padStart(7)} ${f(r['addedP50Ms']).padStart(8)} ${f(r['addedP99Ms']).padStart(8)} ${f(r['ttftP50Ms']).padStart(7)} ${f(r['cpuMsPerRequest'], 3).padStart(11)} ${f(r['throughputOverNginx']).padStart(14)} ${f(r['cpuOverNginx']).padStart(12)}`,
      );
    }
    console.log(`  forwarded / local throughput at ${c}: ${f(row['forwardedOverLocalThroughput'])}x (goal >= 0.8), TTFT p50 forwarded - local: ${f(row['forwardedMinusLocalTtftP50Ms'])} ms`);
    const client = PATHS.map((p) => [p, (row['paths'] as Record<string, Record<string, number> | undefined>)[p]?.['clientCpuMsPerRequest']] as const).filter(([, v]) => v !== undefined);
    console.log(`  client CPU ms/request (the bench process, on the same 2 cores): ${client.map(([p, v]) => `${p} ${f(v, 3)}`).join(', ')}`);
  }
}

function routingBalance(): Record<string, unknown> {
  const steady = runRoutingComparison({ seed: 1, durationMs: 120_000 });
  const burst = runRoutingComparison({ seed: 1, burst: 1000, burstWindowMs: 1000 });
  const of = (c: RoutingComparison, p: RoutingPolicyName) => c.results.find((r) => r.policy === p)!;
  const balance = Object.fromEntries(
    ROUTING_POLICIES.map((p) => [
      p,
      {
        steadyMaxOverMean: of(steady, p).maxOverMeanInFlight,
        steadyP99Ms: of(steady, p).p99LatencyMs,
        burstEndMaxOverMean: of(burst, p).atHorizonMaxOverMean,
        burstPeakInFlight: of(burst, p).peakInFlight,
        burstP99Ms: of(burst, p).p99LatencyMs,
      },
    ]),
  );
  return { balance, balanceRatiosVsFednode: { steady: steady.ratios, burst: Object.fromEntries((['least-loaded', 'round-robin', 'random'] as const).map((p) => [p, of(burst, p).atHorizonMaxOverMean / of(burst, 'fednode').atHorizonMaxOverMean])) } };
}

function printBalance(b: Record<string, unknown>): void {
  console.log('routing balance (simulation, simnet/routing.ts: 8 nodes of mixed capacity, each an entry point, 2 s adverts)');
  console.log('policy         steady max/mean  steady p99 ms  burst-end max/mean  burst peak');
  const bal = b['balance'] as Record<string, { steadyMaxOverMean: number; steadyP99Ms: number; burstEndMaxOverMean: number; burstPeakInFlight: number }>;
  for (const p of ROUTING_POLICIES) {
    const x = bal[p]!;
    console.log(`${p.padEnd(14)} ${x.steadyMaxOverMean.toFixed(3).padStart(15)}  ${x.steadyP99Ms.toFixed(0).padStart(13)}  ${x.burstEndMaxOverMean.toFixed(3).padStart(18)}  ${String(x.burstPeakInFlight).padStart(10)}`);
  }
}

export async function run(opts: { json: boolean; args: readonly string[] }): Promise<unknown> {
  const loadBefore = loadPerCore();
  const rounds = numArg(opts.args, 'rounds', 3);
  const tokens = numArg(opts.args, 'tokens', 16);
  const levels = arg(opts.args, 'levels', '1,16,64,256').split(',').map(Number);
  if (levels.some((c) => !Number.isInteger(c) || c < 1)) throw new Error(`--levels must be positive integers, got ${arg(opts.args, 'levels', '')}`);
  // --paths=forwarded,local: a subset (profiling one path); ratios need their partners
  const only = new Set(arg(opts.args, 'paths', PATHS.join(',')).split(','));
  for (const p of only) if (!(PATHS as readonly string[]).includes(p)) throw new Error(`--paths: unknown path '${p}' (known: ${PATHS.join(', ')})`);
  const body = JSON.stringify({ model: 'simulated', messages: [{ role: 'user', content: 'benchmark prompt' }], max_tokens: tokens, stream: true, stream_options: { include_usage: true } });
  const workers = availableParallelism();
  const srv = await startServers();
  let sw: Sweep;
  let nginxNote: string | null = null;
  let stats: unknown;
  try {
    const ng = await startNginx(srv.bareUrl, workers);
    if (typeof ng === 'string') {
      nginxNote = ng;
      if (!opts.json) console.log(`NOTE: ${ng}`);
    }
    const nginx = typeof ng === 'string' ? null : ng;
    try {
      sw = await sweeps(srv, nginx, levels, rounds, body, only);
    } finally {
      nginx?.stop();
    }
    stats = await srv.a.ask({ t: 'stats' });
  } finally {
    await srv.stop();
  }
  const d = derived(sw, levels);
  const loadAfter = loadPerCore();
  const balance = routingBalance();
  const result = {
    suite: 'infer',
    settings: { rounds, tokens, levels, backend: 'simulated zero-delay', transport: 'loopback TCP; libp2p noise + yamux', client: 'fetch (undici), keep-alive, streaming SSE', nginxWorkers: workers, nginx: nginxNote ?? 'ran' },
    // Load average per core before/after: > 1 means CPU contention inflated the wall-clock figures (cpuMsPerRequest is less affected).
    loadPerCore: { before: loadBefore, after: loadAfter },
    sweep: d,
    forwardClientStreams: stats,
    ...balance,
  };
  if (!opts.json) {
    console.log(`infer benchmark: ${tokens} tokens/request, medians of ${rounds} sweeps, max(400, 8 x concurrency) requests per path and level`);
    console.log(`machine load per core: ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after (> 1: other processes inflate every wall-clock figure)`);
    print(d, levels);
    console.log(`forward client streams (A -> B): ${JSON.stringify(stats)}`);
    printBalance(balance);
  }
  return result;
}
