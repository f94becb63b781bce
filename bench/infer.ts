import '../node/polyfill.js';
// `npm run bench -- infer [--json] [--n=400] [--tokens=16] [--concurrency=16]`
// Loopback, simulated backend in zero-delay mode. Same run, same client (fetch, keep-alive,
// streaming SSE), same request:
//   (a) the backend directly: in-process call, and the same backend behind a bare HTTP/SSE server
//   (b) through the local node's API with local execution
//   (c) through node A's API forwarded over libp2p to node B
// Reports requests/s and p50/p99 latency, and the latency each layer adds. Target: forwarding
// ((c) - (b)) adds < 2 ms p50 and < 5 ms p99. Plus the routing balance figures (simulation).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { availableParallelism, loadavg } from 'node:os';
import { SimulatedBackend } from '../node/backends/index.js';
import type { ChatRequest } from '../node/backends/index.js';
import { ROUTING_POLICIES, runRoutingComparison } from '../simnet/routing.js';
import type { RoutingComparison, RoutingPolicyName } from '../simnet/routing.js';
import { startCluster } from '../test/helpers/infer-cluster.js';

interface Stats {
  n: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? 0;
  return { n: s.length, p50Ms: q(50), p99Ms: q(99), meanMs: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length) };
}

function arg(args: readonly string[], name: string, def: number): number {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  const v = a === undefined ? NaN : Number(a.slice(name.length + 3));
  return Number.isFinite(v) && v > 0 ? v : def;
}

/** One streamed completion over HTTP; resolves when [DONE] arrived. */
async function streamOnce(url: string, body: string): Promise<void> {
  const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  if (res.status !== 200 || res.body === null) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const text = await res.text();
  if (!text.endsWith('data: [DONE]\n\n')) throw new Error('stream did not end with [DONE]');
}

async function measure(label: string, once: () => Promise<void>, n: number, concurrency: number): Promise<{ label: string; latency: Stats; requestsPerS: number; cpuMsPerRequest: number }> {
  for (let i = 0; i < Math.min(50, n); i++) await once(); // warm-up (JIT, connections)
  const lat: number[] = [];
  // CPU time per request (client + nodes, all in this process): less sensitive than wall time to other load on the machine.
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await once();
    lat.push(performance.now() - t0);
  }
  const cpu = process.cpuUsage(cpu0);
  const cpuMsPerRequest = (cpu.user + cpu.system) / 1000 / n;
  const total = n * 2;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        await once();
      }
    }),
  );
  const requestsPerS = total / ((performance.now() - t0) / 1000);
  return { label, latency: stats(lat), requestsPerS, cpuMsPerRequest };
}

/** 1-minute load average per core: above ~1 other processes compete for the CPU and every wall-clock figure grows. */
function loadPerCore(): number {
  return loadavg()[0]! / Math.max(1, availableParallelism());
}

export async function run(opts: { json: boolean; args: readonly string[] }): Promise<unknown> {
  const loadBefore = loadPerCore();
  const n = arg(opts.args, 'n', 400);
  const tokens = arg(opts.args, 'tokens', 16);
  const concurrency = arg(opts.args, 'concurrency', 16);
  const req: ChatRequest = { model: 'simulated', messages: [{ role: 'user', content: 'benchmark prompt' }], maxTokens: tokens };
  const body = JSON.stringify({ model: 'simulated', messages: req.messages, max_tokens: tokens, stream: true });

  // (a) direct, in-process
  const direct = new SimulatedBackend({ tokensPerSecond: 0, concurrency: 1024, maxQueue: 4096, models: ['simulated'] });
  const a0 = await measure(
    '(a) backend in-process',
    async () => {
      for await (const _c of direct.chat(req)) {
        // drain
      }
    },
    n,
    concurrency,
  );
  // (a) direct, the same backend behind a bare HTTP/SSE server (what "calling the backend server" costs)
  const bare = createServer((rq, rs) => {
    let b = '';
    rq.on('data', (c: Buffer) => (b += c.toString()));
    rq.on('end', () => {
      void (async () => {
        const j = JSON.parse(b) as { max_tokens: number; messages: ChatRequest['messages'] };
        rs.writeHead(200, { 'content-type': 'text/event-stream' });
        for await (const c of direct.chat({ model: 'simulated', messages: j.messages, maxTokens: j.max_tokens })) {
          rs.write(`data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: c.type === 'delta' ? { content: c.content } : {}, finish_reason: c.type === 'done' ? c.finishReason : null }] })}\n\n`);
        }
        rs.end('data: [DONE]\n\n');
      })();
    });
  });
  await new Promise<void>((r) => bare.listen(0, '127.0.0.1', r));
  const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}`;
  const a1 = await measure('(a) backend over bare HTTP/SSE', () => streamOnce(bareUrl, body), n, concurrency);
  bare.closeAllConnections();
  bare.close();

  // (b) and (c): node A (no backend, forwards) and node B (simulated backend, also serves locally)
  const cluster = await startCluster({
    size: 2,
    seedBase: 120,
    backends: (i) => (i === 0 ? [] : [new SimulatedBackend({ tokensPerSecond: 0, concurrency: 1024, maxQueue: 4096, models: ['simulated'] })]),
  });
  let b: Awaited<ReturnType<typeof measure>>;
  let c: Awaited<ReturnType<typeof measure>>;
  try {
    const [nodeA, nodeB] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
    b = await measure('(b) node API, local execution', () => streamOnce(nodeB.url, body), n, concurrency);
    c = await measure('(c) node A -> libp2p -> node B', () => streamOnce(nodeA.url, body), n, concurrency);
  } finally {
    await cluster.stop();
  }

  const rows = [a0, a1, b, c];
  const loadAfter = loadPerCore();
  const addedByNode = { p50Ms: b.latency.p50Ms - a1.latency.p50Ms, p99Ms: b.latency.p99Ms - a1.latency.p99Ms };
  const addedByForwarding = { p50Ms: c.latency.p50Ms - b.latency.p50Ms, p99Ms: c.latency.p99Ms - b.latency.p99Ms };
  const target = { p50Ms: 2, p99Ms: 5 };

  // Balance (pure simulation, simnet/routing.ts): steady Poisson load and a burst of 1,000.
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

  const result = {
    suite: 'infer',
    settings: { n, tokens, concurrency, backend: 'simulated zero-delay', transport: 'loopback TCP, libp2p noise+yamux' },
    // Load average per core before/after: > 1 means CPU contention inflated the wall-clock figures (cpuMsPerRequest is less affected).
    loadPerCore: { before: loadBefore, after: loadAfter },
    ratios: { nodeOverBareHttpP50: b.latency.p50Ms / a1.latency.p50Ms, forwardedOverLocalP50: c.latency.p50Ms / b.latency.p50Ms, forwardedOverLocalThroughput: c.requestsPerS / b.requestsPerS },
    paths: rows.map((r) => ({ path: r.label, p50Ms: r.latency.p50Ms, p99Ms: r.latency.p99Ms, meanMs: r.latency.meanMs, requestsPerS: r.requestsPerS, cpuMsPerRequest: r.cpuMsPerRequest })),
    addedByNode,
    addedByForwarding,
    target,
    forwardingMeetsTarget: addedByForwarding.p50Ms < target.p50Ms && addedByForwarding.p99Ms < target.p99Ms,
    balance,
    balanceRatiosVsFednode: { steady: steady.ratios, burst: Object.fromEntries((['least-loaded', 'round-robin', 'random'] as const).map((p) => [p, of(burst, p).atHorizonMaxOverMean / of(burst, 'fednode').atHorizonMaxOverMean])) },
  };

  if (!opts.json) {
    console.log(`infer benchmark: ${tokens} tokens/request, ${n} sequential requests per path, throughput at concurrency ${concurrency}`);
    console.log(`machine load per core: ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after (> 1: other processes inflate every wall-clock figure)`);
    console.log('path                                 p50 ms   p99 ms   mean ms   req/s  cpu ms/req');
    for (const r of rows) console.log(`${r.label.padEnd(36)} ${r.latency.p50Ms.toFixed(3).padStart(7)}  ${r.latency.p99Ms.toFixed(3).padStart(7)}  ${r.latency.meanMs.toFixed(3).padStart(7)}  ${r.requestsPerS.toFixed(0).padStart(6)}  ${r.cpuMsPerRequest.toFixed(3).padStart(10)}`);
    console.log(`node API adds      p50 ${addedByNode.p50Ms.toFixed(3)} ms, p99 ${addedByNode.p99Ms.toFixed(3)} ms (b - a over HTTP)`);
    console.log(`forwarding adds    p50 ${addedByForwarding.p50Ms.toFixed(3)} ms, p99 ${addedByForwarding.p99Ms.toFixed(3)} ms (c - b); target < 2 / < 5 ms: ${result.forwardingMeetsTarget ? 'MET' : 'NOT MET'}`);
    console.log('routing balance (simulation, simnet/routing.ts: 8 nodes of mixed capacity, each an entry point, 2 s adverts)');
    console.log('policy         steady max/mean  steady p99 ms  burst-end max/mean  burst peak');
    for (const p of ROUTING_POLICIES) {
      const x = balance[p]!;
      console.log(`${p.padEnd(14)} ${x.steadyMaxOverMean.toFixed(3).padStart(15)}  ${x.steadyP99Ms.toFixed(0).padStart(13)}  ${x.burstEndMaxOverMean.toFixed(3).padStart(18)}  ${String(x.burstPeakInFlight).padStart(10)}`);
    }
  }
  return result;
}
