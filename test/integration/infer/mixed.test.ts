// A cluster that mixes backend kinds: a field one kind cannot honour goes to a candidate that
// can (failover), and only when none can is it a 400 naming the field; an upstream 4xx is the
// request's fault and is answered at once, not retried on other members.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { OpenAiBackend, SimulatedBackend } from '../../../node/backends/index.js';
import { startCluster } from '../../helpers/infer-cluster.js';
import type { TestNode } from '../../helpers/infer-cluster.js';

let cluster: Awaited<ReturnType<typeof startCluster>>;
let n0: TestNode;
let n1: TestNode;
let upstream: Server;
const received: Record<string, unknown>[] = [];

beforeAll(async () => {
  // An OpenAI-compatible server for model 'm' that honours everything, or answers 400 when the prompt says "too long".
  upstream = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (req.url === '/v1/models') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'list', data: [{ id: 'm', object: 'model' }] }));
        return;
      }
      const j = JSON.parse(body) as Record<string, unknown>;
      received.push(j);
      if (JSON.stringify(j['messages']).includes('too long')) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end('{"error":{"code":400,"message":"request (9000 tokens) exceeds the available context size (256 tokens)","type":"exceed_context_size_error"}}');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: 'biased' } }] })}\n\n`);
      res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1 } })}\n\n`);
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
  // node 0: simulated 'm' (cannot honour logit_bias); node 1: the OpenAI-compatible server
  cluster = await startCluster({ size: 2, seedBase: 90, backends: (i) => (i === 0 ? [new SimulatedBackend({ tokensPerSecond: 0, models: ['m'] })] : [new OpenAiBackend({ baseUrl: url })]) });
  [n0, n1] = cluster.nodes as [TestNode, TestNode];
});
afterAll(async () => {
  await cluster.stop();
  upstream.closeAllConnections();
  await new Promise((r) => upstream.close(r));
});

const client = (): OpenAI => new OpenAI({ baseURL: `${n0.url}/v1`, apiKey: 'x', maxRetries: 0 });

describe('mixed backend kinds', () => {
  it('logit_bias goes to the member whose backend honours it, whichever node ranks first', async () => {
    for (let i = 0; i < 4; i++) {
      const { data, response } = await client().chat.completions.create({ model: 'm', messages: [{ role: 'user', content: `hi ${i}` }], logit_bias: { '42': -100 } }).withResponse();
      expect(response.headers.get('x-fednode-served-by')).toBe(n1.peerId);
      expect(data.choices[0]!.message.content).toBe('biased');
    }
    expect(received.at(-1)!['logit_bias']).toEqual({ '42': -100 });
  });

  it('an upstream 400 is answered with its status and code at once: the next candidate is not tried', async () => {
    n0.fakeLoad.inFlight = 1000; // node 1 ranks its own backend first
    try {
      const before = received.length;
      const viaN1 = new OpenAI({ baseURL: `${n1.url}/v1`, apiKey: 'x', maxRetries: 0 });
      const err = (await viaN1.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'too long' }] }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
      expect(err.status).toBe(400);
      expect(err.code).toBe('exceed_context_size_error');
      expect(err.message).toContain('exceeds the available context size');
      expect(received.length).toBe(before + 1);
      const d = n1.router.recentDecisions().at(-1)!;
      expect(d).toMatchObject({ chosen: null, attempts: 1 });
      expect(d.reason).toContain('client error');
    } finally {
      n0.fakeLoad.inFlight = 0;
    }
  });
});
