import '../node/polyfill.js';
// `npm run bench -- engine [--json] [--rounds=9] [--tokens=256] [--threads=1]`
// Tokens/s of the project's tiny GGUF model (made here, never downloaded; end of turn
// disabled so every reply is exactly --tokens long, greedy so the work is the same), measured
// in the same run, rounds interleaved so machine drift hits every path alike:
//   (a) node-llama-cpp directly (LlamaChat.generateResponse on its own context)
//   (b) through node B's OpenAI-compatible API, served locally by its llama-cpp backend (HTTP + SSE)
//   (c) through node A's API, forwarded over libp2p to node B (A has no backend)
// Reports the median tokens/s of each and the ratios (b)/(a) and (c)/(a). Goal: (b) >= 0.9x (a).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { LlamaCppBackend } from '../node/backends/llama-cpp.js';
import { tinyModelGguf } from '../node/backends/llama-cpp-tiny.js';
import { importNodeLlamaCpp } from '../node/backends/llama-cpp-engine.js';
import { startCluster } from '../test/helpers/infer-cluster.js';
import type { BenchOptions } from './main.js';

function arg(args: readonly string[], name: string, def: number): number {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  const v = a === undefined ? NaN : Number(a.slice(name.length + 3));
  return Number.isFinite(v) && v > 0 ? v : def;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};

const PROMPT = 'tell me a story about a cluster of small computers';

/** One streamed chat completion over HTTP; returns completion tokens / wall seconds. */
async function viaApi(url: string, tokens: number): Promise<number> {
  const body = JSON.stringify({ model: 'tiny', stream: true, stream_options: { include_usage: true }, max_tokens: tokens, temperature: 0, messages: [{ role: 'user', content: PROMPT }] });
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const text = await res.text();
  const dt = (performance.now() - t0) / 1000;
  const m = /"completion_tokens":(\d+)/.exec(text);
  if (m === null || !text.endsWith('data: [DONE]\n\n')) throw new Error(`stream without usage or [DONE]: ${text.slice(-300)}`);
  const n = Number(m[1]);
  if (n !== tokens) throw new Error(`expected ${tokens} completion tokens, got ${n}`);
  return n / dt;
}

export async function run(opts: BenchOptions): Promise<unknown> {
  const rounds = arg(opts.args, 'rounds', 9);
  const tokens = arg(opts.args, 'tokens', 256);
  const threads = arg(opts.args, 'threads', 1);
  const dir = mkdtempSync(join(tmpdir(), 'fednode-bench-engine-'));
  const file = join(dir, 'tiny.gguf');
  writeFileSync(file, tinyModelGguf({ seed: 1, eosBias: -30 }));
  const engineCfg = { kind: 'llama-cpp', id: 'llama', models: [{ path: file, id: 'tiny' }], threads, gpu: false, contextSize: 1024, sequences: 1 };

  // (a) node-llama-cpp directly, same settings as the backend
  const lib = await importNodeLlamaCpp();
  const llama = await lib.getLlama({ gpu: false, build: 'never', logLevel: lib.LlamaLogLevel.warn });
  const model = await llama.loadModel({ modelPath: file });
  const ctx = await model.createContext({ contextSize: 1024, sequences: 1, threads });
  const seq = ctx.getSequence();
  // The chat template resolved once, as the backend does (resolving it per LlamaChat costs ~300 ms).
  const probe = new lib.LlamaChat({ contextSequence: seq, autoDisposeSequence: false });
  const chatWrapper = probe.chatWrapper;
  probe.dispose();
  const direct = async (): Promise<number> => {
    const chat = new lib.LlamaChat({ contextSequence: seq, chatWrapper, autoDisposeSequence: false });
    const out0 = seq.tokenMeter.usedOutputTokens;
    const t0 = performance.now();
    await chat.generateResponse([{ type: 'user', text: PROMPT }, { type: 'model', response: [] }], { maxTokens: tokens, temperature: 0, onTextChunk: () => undefined });
    const dt = (performance.now() - t0) / 1000;
    chat.dispose();
    await seq.clearHistory();
    return (seq.tokenMeter.usedOutputTokens - out0) / dt;
  };

  // (b), (c): node B serves with its llama-cpp backend; node A routes only and forwards to B
  const cluster = await startCluster({ size: 2, backends: (i) => (i === 0 ? [] : [new LlamaCppBackend(engineCfg)]) });
  const [a, b] = cluster.nodes as [(typeof cluster.nodes)[number], (typeof cluster.nodes)[number]];
  const samples = { direct: [] as number[], nodeApi: [] as number[], forwarded: [] as number[] };
  try {
    for (let i = 0; i < 2; i++) {
      await direct();
      await viaApi(b.url, tokens);
      await viaApi(a.url, tokens);
    } // warm-up: JIT, connections, first-use allocations
    for (let r = 0; r < rounds; r++) {
      samples.direct.push(await direct());
      samples.nodeApi.push(await viaApi(b.url, tokens));
      samples.forwarded.push(await viaApi(a.url, tokens));
    }
  } finally {
    await cluster.stop();
    for (const bk of b.backends.backends) await (bk as LlamaCppBackend).close();
    await llama.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
  const med = { direct: median(samples.direct), nodeApi: median(samples.nodeApi), forwarded: median(samples.forwarded) };
  const result = {
    suite: 'engine',
    model: 'fednode tiny GGUF (64 dims, 2 layers, F32), greedy, end of turn disabled',
    rounds,
    tokensPerRequest: tokens,
    threads,
    tokensPerS: med,
    ratio: { nodeApiVsDirect: med.nodeApi / med.direct, forwardedVsDirect: med.forwarded / med.direct },
    goal: 'node API >= 0.9x direct',
    goalMet: med.nodeApi / med.direct >= 0.9,
    samples,
  };
  if (!opts.json) {
    const f = (x: number): string => x.toFixed(0).padStart(8);
    process.stdout.write(
      [
        `engine: tiny GGUF, ${tokens} tokens/request, ${rounds} interleaved rounds, ${threads} thread(s); median tokens/s`,
        `  (a) node-llama-cpp directly     ${f(med.direct)}`,
        `  (b) node API (local backend)    ${f(med.nodeApi)}   ${result.ratio.nodeApiVsDirect.toFixed(3)}x direct`,
        `  (c) node A -> B (forwarded)     ${f(med.forwarded)}   ${result.ratio.forwardedVsDirect.toFixed(3)}x direct`,
        `  goal (b) >= 0.9x (a): ${result.goalMet ? 'met' : 'NOT met'}`,
        '',
      ].join('\n'),
    );
  }
  return result;
}
