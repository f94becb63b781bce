// One server process of the infer bench (spawned by bench/infer.ts), so the client's CPU is not
// counted as a node's and no two nodes share an event loop (as deployed, and as the cores allow):
//   role B: the simulated backend (zero-delay) behind a bare HTTP/SSE server (path (a), nginx's
//           upstream for (d)) and node B with the same kind of backend (path (b): local execution)
//   role A: node A without a backend; its one candidate is B (path (c): forwarded over libp2p)
//   parent -> child: {t:'init', role:'B'} | {t:'init', role:'A', peerId, addrs} | {t:'cpu'} | {t:'stats'} | {t:'stop'}
//   child -> parent: {t:'ready', url, bareUrl?, peerId, addrs} | {t:'cpu', us} | {t:'stats', opened, reused, staleReplaced}
import '../node/polyfill.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import { SimulatedBackend } from '../node/backends/index.js';
import type { ChatRequest } from '../node/backends/index.js';
import { candidateOf, clusterIdentities, startNode, stopNode } from '../test/helpers/infer-cluster.js';
import type { TestNode } from '../test/helpers/infer-cluster.js';

type Msg = { t: 'init'; role: 'B' } | { t: 'init'; role: 'A'; peerId: string; addrs: string[] } | { t: 'cpu' } | { t: 'stats' } | { t: 'stop' };

const send = (m: unknown): void => void process.send?.(m);
const zeroDelay = (): SimulatedBackend => new SimulatedBackend({ tokensPerSecond: 0, concurrency: 1024, maxQueue: 4096, models: ['simulated'] });
// 256 streams at once: the routing and inbound bounds raised to 512, as an operator expecting that load would
const BOUNDS = { maxPerPeer: 512, maxInFlight: 512, maxConcurrent: 512 };
const [idA, idB] = clusterIdentities(2, 120) as [ReturnType<typeof clusterIdentities>[0], ReturnType<typeof clusterIdentities>[0]];
const members = new Set([idA.peerId, idB.peerId]);

/** The backend alone behind a bare HTTP/SSE server: what "calling the backend server" costs. */
async function bareServer(): Promise<{ url: string; close: () => void }> {
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
  return {
    url: `http://127.0.0.1:${(bare.address() as AddressInfo).port}`,
    close: () => {
      bare.closeAllConnections();
      bare.close();
    },
  };
}

async function init(m: Extract<Msg, { t: 'init' }>): Promise<{ node: TestNode; close: () => void }> {
  if (m.role === 'B') {
    const bare = await bareServer();
    const node = await startNode(1, idB, members, { ...BOUNDS, backends: () => [zeroDelay()] }, () => []);
    send({ t: 'ready', url: node.url, bareUrl: bare.url, peerId: node.peerId, addrs: node.libp2p.getMultiaddrs().map(String) });
    return { node, close: bare.close };
  }
  // A's peer table: B with an idle advert (B is its only candidate; ranking has nothing to choose)
  const b = candidateOf(m.peerId, ['simulated'], { inFlight: 0, queued: 0, capacity: 1024 });
  const node = await startNode(0, idA, members, { ...BOUNDS, backends: () => [] }, () => [b]);
  await node.libp2p.peerStore.patch(peerIdFromString(m.peerId), { multiaddrs: m.addrs.map((a) => multiaddr(a)) });
  await node.libp2p.dial(peerIdFromString(m.peerId));
  send({ t: 'ready', url: node.url, peerId: node.peerId, addrs: node.libp2p.getMultiaddrs().map(String) });
  return { node, close: () => undefined };
}

let started: Promise<{ node: TestNode; close: () => void }> | null = null;
process.on('message', (m: Msg) => {
  if (m.t === 'init') started = init(m);
  else if (m.t === 'cpu') {
    const u = process.cpuUsage();
    send({ t: 'cpu', us: u.user + u.system });
  } else if (m.t === 'stats') void started?.then((s) => send({ t: 'stats', ...s.node.forwardClient.stats }));
  else if (m.t === 'stop') {
    void (started ?? Promise.reject(new Error('not started')))
      .then(async (s) => {
        s.close();
        await stopNode(s.node);
      })
      .finally(() => process.exit(0));
  }
});
