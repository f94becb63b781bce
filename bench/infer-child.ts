// The servers of the infer bench (spawned by bench/infer.ts), in their own process so the
// client's CPU is not counted as theirs and does not share their event loop:
//   - the simulated backend (zero-delay) behind a bare HTTP/SSE server: path (a), and nginx's upstream (d)
//   - node B (that backend's twin, local execution): path (b); node A (no backend, forwards to B): path (c)
// A and B share this process (test/helpers/infer-cluster.ts), as the bench always measured them.
//   child -> parent: {t:'ready', bareUrl, localUrl, forwardUrl} | {t:'cpu', us} | {t:'stats', opened, reused}
//   parent -> child: {t:'cpu'} | {t:'stats'} | {t:'stop'}
import '../node/polyfill.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SimulatedBackend } from '../node/backends/index.js';
import type { ChatRequest } from '../node/backends/index.js';
import { startCluster } from '../test/helpers/infer-cluster.js';

const send = (m: unknown): void => void process.send?.(m);
const zeroDelay = (): SimulatedBackend => new SimulatedBackend({ tokensPerSecond: 0, concurrency: 1024, maxQueue: 4096, models: ['simulated'] });

async function main(): Promise<void> {
  const direct = zeroDelay();
  const bare = createServer((rq, rs) => {
    if (rq.method !== 'POST' || rq.url !== '/v1/chat/completions') {
      rs.writeHead(404).end(); // nginx's start-up probe
      return;
    }
    let b = '';
    rq.on('data', (c: Buffer) => (b += c.toString()));
    rq.on('end', () => {
      void (async () => {
        const j = JSON.parse(b) as { max_tokens: number; messages: ChatRequest['messages'] };
        rs.writeHead(200, { 'content-type': 'text/event-stream' });
        let n = 0;
        for await (const c of direct.chat({ model: 'simulated', messages: j.messages, maxTokens: j.max_tokens })) {
          if (c.type === 'delta') n++;
          rs.write(`data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: c.type === 'delta' ? { content: c.content } : {}, finish_reason: c.type === 'done' ? c.finishReason : null }] })}\n\n`);
        }
        rs.write(`data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [], usage: { completion_tokens: n } })}\n\n`);
        rs.end('data: [DONE]\n\n');
      })();
    });
  });
  await new Promise<void>((r) => bare.listen(0, '127.0.0.1', r));
  const cluster = await startCluster({ size: 2, seedBase: 120, backends: (i) => (i === 0 ? [] : [zeroDelay()]),
    // 256 streams at once: the routing and inbound bounds raised to 512, as an operator expecting that load would
    maxPerPeer: 512,
    maxInFlight: 512,
    maxConcurrent: 512,
  });
  const [nodeA, nodeB] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
  process.on('message', (m: { t: string }) => {
    if (m.t === 'cpu') {
      const u = process.cpuUsage();
      send({ t: 'cpu', us: u.user + u.system });
    } else if (m.t === 'stats') {
      send({ t: 'stats', ...nodeA.forwardClient.stats });
    } else if (m.t === 'stop') {
      bare.closeAllConnections();
      bare.close();
      void cluster.stop().finally(() => process.exit(0));
    }
  });
  send({ t: 'ready', bareUrl: `http://127.0.0.1:${(bare.address() as AddressInfo).port}`, localUrl: nodeB.url, forwardUrl: nodeA.url });
}

void main();
