// #14 item 4: a prompt as large as the API accepts (4 MiB body) is forwarded over libp2p in
// 256 KiB continuation frames and served by another node; before, prompts over 1 MiB failed
// with "no request frame within 5000 ms" per candidate.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import OpenAI from 'openai';
import { SimulatedBackend } from '../../../node/backends/index.js';
import { startCluster } from '../../helpers/infer-cluster.js';
import type { TestNode } from '../../helpers/infer-cluster.js';

let cluster: Awaited<ReturnType<typeof startCluster>>;
let n0: TestNode;
let n1: TestNode;

beforeAll(async () => {
  cluster = await startCluster({ size: 2, seedBase: 80, backends: (i) => (i === 0 ? [] : [new SimulatedBackend({ tokensPerSecond: 0, models: ['simulated'] })]) });
  [n0, n1] = cluster.nodes as [TestNode, TestNode];
});
afterAll(() => cluster.stop());

describe('big prompts forward', () => {
  it('a 4 MiB request body is forwarded and served by the other node', async () => {
    const envelopeBytes = 300; // JSON around the content
    const content = 'word '.repeat(Math.floor((4 * 1024 * 1024 - envelopeBytes) / 5));
    const body = JSON.stringify({ model: 'simulated', messages: [{ role: 'user', content }], max_tokens: 4 });
    expect(Buffer.byteLength(body)).toBeGreaterThan(4 * 1024 * 1024 - 1024);
    expect(Buffer.byteLength(body)).toBeLessThanOrEqual(4 * 1024 * 1024);
    const client = new OpenAI({ baseURL: `${n0.url}/v1`, apiKey: 'x', maxRetries: 0, timeout: 120_000 });
    const { data, response } = await client.chat.completions.create({ model: 'simulated', messages: [{ role: 'user', content }], max_tokens: 4 }).withResponse();
    expect(response.headers.get('x-fednode-served-by')).toBe(n1.peerId);
    expect(data.choices[0]!.message.content!.split(' ')).toHaveLength(4);
    // the serving node counted the whole prompt (simulated: a token per 4 characters of "user: <content>")
    expect(data.usage!.prompt_tokens).toBe(Math.ceil(`user: ${content}`.length / 4));
    expect(n1.forwardServer.refused).toEqual({});
  }, 120_000);

  it('a body over the API limit is 413 at the API, never forwarded', async () => {
    const r = await fetch(`${n0.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'simulated', messages: [{ role: 'user', content: 'x'.repeat(4 * 1024 * 1024) }] }) });
    expect(r.status).toBe(413);
  });
});
