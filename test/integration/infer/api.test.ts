// The node's OpenAI-compatible API over a real 3-node libp2p cluster (TCP + noise +
// yamux on 127.0.0.1), driven by the official `openai` npm client.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import OpenAI from 'openai';
import { pipe } from 'it-pipe';
import * as lp from 'it-length-prefixed';
import { identityFromSeed } from '../../../crypto/keys.js';
import { createEnvelope, decodeCanonical } from '../../../crypto/index.js';
import { SimulatedBackend, BackendSet, BackendError } from '../../../node/backends/index.js';
import type { Backend, ChatChunk } from '../../../node/backends/index.js';
import { InferenceRouter, INFER_PROTOCOL, INFER_REQUEST_KIND, forwardHostFromLibp2p } from '../../../node/forward/index.js';
import { createApiServer, ApiError } from '../../../node/api/server.js';
import { infer, listModels } from '../../../node/api/client.js';
import { startCluster, makeLibp2p, CLUSTER } from '../../helpers/infer-cluster.js';
import type { TestNode } from '../../helpers/infer-cluster.js';
import { peerIdFromString } from '@libp2p/peer-id';

let cluster: Awaited<ReturnType<typeof startCluster>>;
let n0: TestNode;
let n1: TestNode;
let n2: TestNode;

beforeAll(async () => {
  // node 0 has no backend: it can only forward. Nodes 1 and 2 run simulated backends
  // (node 1 slow enough to test cancellation mid-stream).
  cluster = await startCluster({
    size: 3,
    backends: (i) => (i === 0 ? [] : [new SimulatedBackend({ tokensPerSecond: 0, concurrency: 8, models: ['simulated'] })]),
  });
  [n0, n1, n2] = cluster.nodes as [TestNode, TestNode, TestNode];
});

afterAll(async () => {
  await cluster.stop();
});

const client = (n: TestNode): OpenAI => new OpenAI({ baseURL: `${n.url}/v1`, apiKey: 'unused-on-loopback', maxRetries: 0 });

describe('OpenAI client against a node, served by another node', () => {
  it('non-streaming completion is forwarded and says which node served it', async () => {
    const { data, response } = await client(n0)
      .chat.completions.create({ model: 'simulated', messages: [{ role: 'user', content: 'hello cluster' }], max_tokens: 8 })
      .withResponse();
    const servedBy = response.headers.get('x-fednode-served-by');
    expect([n1.peerId, n2.peerId]).toContain(servedBy);
    expect(data.id).toMatch(/^chatcmpl-/);
    expect(data.object).toBe('chat.completion');
    expect(data.choices[0]!.message.role).toBe('assistant');
    expect(data.choices[0]!.message.content!.split(' ')).toHaveLength(8);
    expect(data.choices[0]!.finish_reason).toBe('length');
    expect(data.usage!.completion_tokens).toBe(8);
    expect(data.usage!.total_tokens).toBe(data.usage!.prompt_tokens + 8);
    expect((data as unknown as { fednode: { served_by: string } }).fednode.served_by).toBe(servedBy);
  });

  it('streaming completion arrives as chunks, with served_by in the final chunk and usage', async () => {
    const stream = await client(n0).chat.completions.create({
      model: 'simulated',
      messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'stream please' }],
      max_tokens: 12,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let chunks = 0;
    let finish: string | null = null;
    let servedBy: string | undefined;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const c of stream) {
      expect(c.object).toBe('chat.completion.chunk');
      expect(c.id).toMatch(/^chatcmpl-/);
      chunks++;
      text += c.choices[0]?.delta?.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
      const f = (c as unknown as { fednode?: { served_by: string } }).fednode;
      if (f !== undefined) servedBy = f.served_by;
      if (c.usage) usage = c.usage;
    }
    // role chunk + content chunk(s) + final chunk + usage chunk; tokens that arrive in the
    // same event-loop turn may share a frame (see node/forward/protocol.ts)
    expect(chunks).toBeGreaterThanOrEqual(4);
    expect(text.split(' ')).toHaveLength(12);
    expect(finish).toBe('length');
    expect([n1.peerId, n2.peerId]).toContain(servedBy);
    expect(usage?.completion_tokens).toBe(12);
  });

  it('GET /v1/models lists every model a live member serves, and /healthz answers', async () => {
    const models = await client(n0).models.list();
    const ids = models.data.map((m) => m.id);
    expect(ids).toEqual(['simulated']);
    const listed = await listModels({ url: n0.url });
    expect(listed[0]!.servedBy.sort()).toEqual([n1.peerId, n2.peerId].sort());
    expect(listed[0]!.simulated).toBe(true);
    const h = (await (await fetch(`${n0.url}/healthz`)).json()) as { status: string; node: string };
    expect(h).toMatchObject({ status: 'ok', node: n0.peerId });
  });

  it('infer() (CLI logic) streams and returns served_by and tokens/s', async () => {
    const tokens: string[] = [];
    const r = await infer({ url: n0.url, model: 'simulated', prompt: 'count', maxTokens: 10, onToken: (t) => tokens.push(t) });
    expect([n1.peerId, n2.peerId]).toContain(r.servedBy);
    expect(r.completionTokens).toBe(10);
    expect(tokens.join('')).toBe(r.text);
    expect(r.tokensPerSecond === null || r.tokensPerSecond > 0).toBe(true);
  });

  it('spreads concurrent requests over both serving nodes (no herding onto one)', async () => {
    const served = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const { response } = await client(n0).chat.completions.create({ model: 'simulated', messages: [{ role: 'user', content: `q${i}` }], max_tokens: 4 }).withResponse();
        return response.headers.get('x-fednode-served-by');
      }),
    );
    expect(new Set(served)).toEqual(new Set([n1.peerId, n2.peerId]));
  });
});

describe('bad input: clear errors, node unharmed', () => {
  const post = (n: TestNode, body: string, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(`${n.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

  it('invalid JSON -> 400 invalid_json in OpenAI error shape', async () => {
    const r = await post(n0, '{"model": "simulated", messages: ');
    expect(r.status).toBe(400);
    const j = (await r.json()) as { error: { type: string; code: string; message: string; param: null } };
    expect(j.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_json', param: null });
  });

  it('missing fields -> 400 naming the field', async () => {
    const r = await post(n0, JSON.stringify({ model: 'simulated' }));
    expect(r.status).toBe(400);
    const j = (await r.json()) as { error: { message: string; param: string } };
    expect(j.error.param).toBe('messages');
    expect(j.error.message).toContain('messages');
    const r2 = await post(n0, JSON.stringify({ model: 'simulated', messages: [{ role: 'wizard', content: 'x' }] }));
    expect(r2.status).toBe(400);
    expect(((await r2.json()) as { error: { param: string } }).error.param).toBe('messages.0.role');
  });

  it('unknown model -> 404 model_not_found listing the models (openai client raises NotFoundError)', async () => {
    const err = await client(n0)
      .chat.completions.create({ model: 'gpt-9', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    const e = err as InstanceType<typeof OpenAI.NotFoundError>;
    expect(e.code).toBe('model_not_found');
    expect(e.message).toContain('Available models: simulated');
  });

  it('oversize body -> 413', async () => {
    const r = await post(n0, JSON.stringify({ model: 'simulated', messages: [{ role: 'user', content: 'x'.repeat(5 * 1024 * 1024) }] }));
    expect(r.status).toBe(413);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('request_too_large');
  });

  it('unknown endpoint -> 404, wrong method -> 405', async () => {
    expect((await fetch(`${n0.url}/v1/nope`)).status).toBe(404);
    expect((await fetch(`${n0.url}/v1/chat/completions`)).status).toBe(405);
  });

  it('a non-member opening the forwarding protocol is refused; a member sending garbage too; the node keeps serving', async () => {
    const outsiderId = identityFromSeed(new Uint8Array(32).fill(99));
    const outsider = await makeLibp2p(outsiderId);
    try {
      await outsider.peerStore.patch(peerIdFromString(n1.peerId), { multiaddrs: n1.libp2p.getMultiaddrs() });
      const header = createEnvelope(outsiderId, {
        kind: INFER_REQUEST_KIND,
        cluster: CLUSTER,
        seq: 1,
        time: Date.now(),
        body: { requestId: 'r1', model: 'simulated', deadlineMs: Date.now() + 10_000, hop: 1, op: 'chat', request: JSON.stringify({ model: 'simulated', messages: [{ role: 'user', content: 'let me in' }] }) },
      });
      const ask = async (frames: Uint8Array[]): Promise<Record<string, unknown>[]> => {
        const stream = await forwardHostFromLibp2p(outsider).dialProtocol(n1.peerId, INFER_PROTOCOL);
        const got: Record<string, unknown>[] = [];
        // wire.ts: a flag byte (0 = last frame of the message) before each message part
        const flagged = frames.map((f) => new Uint8Array([0, ...f]));
        await pipe(flagged, (s) => lp.encode(s), stream.sink);
        for await (const f of lp.decode(stream.source)) got.push(decodeCanonical(f.subarray().subarray(1)) as Record<string, unknown>);
        return got;
      };
      const before = n1.forwardServer.refused['ERR_FORWARD_REFUSED'] ?? 0;
      const reply = await ask([header]);
      expect(reply).toHaveLength(1);
      expect(reply[0]).toMatchObject({ t: 'x', code: 'ERR_FORWARD_REFUSED' });
      expect(String(reply[0]!['msg'])).toContain('not a member');
      expect(n1.forwardServer.refused['ERR_FORWARD_REFUSED']).toBe(before + 1);

      // Temporarily a member, but sending garbage instead of an envelope: refused with a reason.
      cluster.members.add(outsiderId.peerId);
      try {
        const junk = await ask([new Uint8Array([1, 2, 3, 4, 5])]);
        expect(junk[0]).toMatchObject({ t: 'x', code: 'ERR_FORWARD_REFUSED' });
        expect(String(junk[0]!['msg'])).toContain('bad request envelope');
        // A header signed for another cluster is refused too.
        const wrongCluster = createEnvelope(outsiderId, { kind: INFER_REQUEST_KIND, cluster: 'other', seq: 2, time: Date.now(), body: {} });
        expect((await ask([wrongCluster]))[0]).toMatchObject({ code: 'ERR_FORWARD_REFUSED' });
        // hop count 2 is refused (a forwarded request is never forwarded again)
        const twoHops = createEnvelope(outsiderId, {
          kind: INFER_REQUEST_KIND,
          cluster: CLUSTER,
          seq: 3,
          time: Date.now(),
          body: { requestId: 'r2', model: 'simulated', deadlineMs: Date.now() + 10_000, hop: 2, op: 'chat', request: JSON.stringify({ model: 'simulated', messages: [{ role: 'user', content: 'x' }] }) },
        });
        const r = await ask([twoHops]);
        expect(String(r[0]!['msg'])).toContain('hop 2 not allowed');
      } finally {
        cluster.members.delete(outsiderId.peerId);
      }
    } finally {
      await outsider.stop();
    }
    const ok = await client(n0).chat.completions.create({ model: 'simulated', messages: [{ role: 'user', content: 'still alive?' }], max_tokens: 3 });
    expect(ok.choices[0]!.message.content!.length).toBeGreaterThan(0);
  });
});

describe('cancellation and limits', () => {
  it('client disconnect aborts the backend request on the serving node', async () => {
    const slow = await startCluster({
      size: 2,
      seedBase: 40,
      backends: (i) => (i === 0 ? [] : [new SimulatedBackend({ tokensPerSecond: 50, concurrency: 4, models: ['simulated'] })]),
    });
    try {
      const [a, b] = slow.nodes as [TestNode, TestNode];
      const ac = new AbortController();
      const res = await fetch(`${a.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'simulated', messages: [{ role: 'user', content: 'long' }], max_tokens: 2000, stream: true }),
        signal: ac.signal,
      });
      expect(res.headers.get('x-fednode-served-by')).toBe(b.peerId);
      const reader = res.body!.getReader();
      await reader.read();
      expect(b.router.localLoad().inFlight).toBe(1);
      ac.abort();
      const t0 = Date.now();
      while ((b.router.localLoad().inFlight > 0 || b.forwardServer.active > 0) && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
      expect(b.router.localLoad().inFlight).toBe(0);
      expect(b.forwardServer.active).toBe(0);
      expect(a.router.accounting.get(b.peerId).outstanding).toBe(0);
    } finally {
      await slow.stop();
    }
  });

  it('failover: the least-loaded peer is killed, requests still complete on another', async () => {
    const c = await startCluster({ size: 3, seedBase: 60, backends: (i) => (i === 0 ? [] : [new SimulatedBackend({ tokensPerSecond: 0, models: ['simulated'] })]) });
    try {
      const [a, b, d] = c.nodes as [TestNode, TestNode, TestNode];
      d.fakeLoad.inFlight = 50; // b is clearly the least loaded
      expect(a.router.rank('simulated', 1)[0]!.peerId).toBe(b.peerId);
      await b.libp2p.stop(); // killed; its (stale) advert still says it is idle
      for (let i = 0; i < 3; i++) {
        const r = await infer({ url: a.url, model: 'simulated', prompt: `after kill ${i}`, maxTokens: 4 });
        expect(r.servedBy).toBe(d.peerId);
        expect(r.attempts).toBe(2);
      }
      expect(a.router.accounting.get(b.peerId).outstanding).toBe(0);
    } finally {
      await c.stop().catch(() => undefined);
    }
  });

  it('reuses a forwarding stream for sequential requests and replaces one the server closed', async () => {
    const c = await startCluster({ size: 2, seedBase: 80, idleTimeoutMs: 300, backends: (i) => (i === 0 ? [] : [new SimulatedBackend({ tokensPerSecond: 0, models: ['simulated'] })]) });
    try {
      const [a, b] = c.nodes as [TestNode, TestNode];
      for (let i = 0; i < 5; i++) expect((await infer({ url: a.url, model: 'simulated', prompt: `seq ${i}`, maxTokens: 3 })).servedBy).toBe(b.peerId);
      expect(a.forwardClient.stats).toMatchObject({ opened: 1, reused: 4 });
      // the server closes the idle stream after its 300 ms: awaited on A's side of the connection
      // (the stream's read side closes when B ends its write side)
      const openForReading = (): number => a.libp2p.getConnections(peerIdFromString(b.peerId)).flatMap((cn) => cn.streams).filter((st) => st.protocol === INFER_PROTOCOL && st.readStatus === 'ready').length;
      await expect.poll(openForReading, { timeout: 10_000 }).toBe(0);
      expect((await infer({ url: a.url, model: 'simulated', prompt: 'after idle', maxTokens: 3 })).servedBy).toBe(b.peerId);
      expect(a.forwardClient.stats.opened).toBe(2);
    } finally {
      await c.stop();
    }
  });

  it('429 + Retry-After when the serving capacity is full; the stream error event after the first token', async () => {
    const busyBackend = new SimulatedBackend({ tokensPerSecond: 20, concurrency: 1, maxQueue: 0, models: ['simulated'] });
    const failing: Backend = {
      id: 'failing',
      kind: 'simulated',
      health: () => Promise.resolve({ ok: true, latencyMs: 0, detail: '' }),
      models: () => Promise.resolve([{ id: 'flaky', backendId: 'failing', kind: 'simulated', simulated: true, loaded: true }]),
      chat: async function* (): AsyncIterable<ChatChunk> {
        yield { type: 'delta', content: 'partial' };
        await new Promise((r) => setTimeout(r, 5));
        throw new BackendError('ERR_BACKEND_UNREACHABLE', 'GPU fell off the bus');
      },
    };
    const set = new BackendSet([busyBackend, failing]);
    await set.refresh();
    const router = new InferenceRouter({ localPeerId: 'solo', backends: set, peers: () => [], forward: null, maxRetries: 0 });
    const api = createApiServer({ router });
    const { url } = await api.listen();
    try {
      const ac = new AbortController();
      const first = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'simulated', messages: [{ role: 'user', content: 'hold the slot' }], max_tokens: 200, stream: true }),
        signal: ac.signal,
      });
      expect(first.status).toBe(200);
      const second = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'simulated', messages: [{ role: 'user', content: 'x' }] }) });
      expect(second.status).toBe(429);
      expect(second.headers.get('retry-after')).toBe('1');
      expect(((await second.json()) as { error: { type: string } }).error.type).toBe('rate_limit_error');
      ac.abort();

      const stream = await new OpenAI({ baseURL: `${url}/v1`, apiKey: 'x', maxRetries: 0 }).chat.completions.create({ model: 'flaky', messages: [{ role: 'user', content: 'x' }], stream: true });
      const got: string[] = [];
      const err = await (async () => {
        for await (const c of stream) got.push(c.choices[0]?.delta?.content ?? '');
      })().catch((e: unknown) => e);
      expect(got.join('')).toBe('partial');
      expect(err).toBeInstanceOf(OpenAI.APIError);
      expect(String((err as Error).message)).toContain('GPU fell off the bus');
    } finally {
      await api.close();
    }
  });

  it('listening beyond loopback requires an API key; with a key, requests need the bearer token', async () => {
    const router = new InferenceRouter({ localPeerId: 'solo', backends: null, peers: () => [], forward: null });
    expect(() => createApiServer({ router, host: '0.0.0.0' })).toThrow(ApiError);
    const api = createApiServer({ router, apiKey: 'a-long-enough-api-key' });
    const { url } = await api.listen();
    try {
      expect((await fetch(`${url}/v1/models`)).status).toBe(401);
      expect((await fetch(`${url}/v1/models`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
      const ok = await fetch(`${url}/v1/models`, { headers: { authorization: 'Bearer a-long-enough-api-key' } });
      expect(ok.status).toBe(200);
      expect(((await ok.json()) as { data: unknown[] }).data).toEqual([]);
    } finally {
      await api.close();
    }
  });
});
