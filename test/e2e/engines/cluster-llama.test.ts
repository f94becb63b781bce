// `fednode cluster --nodes 3 --engine llama`: three real node processes, each running the
// embedded llama.cpp engine on the project's tiny GGUF model. Through one node's API: an
// answer from the real engine, a request forwarded to another node when this one's
// sequences are full, and a stream aborted mid-way that frees its sequence.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Running } from '../../helpers/e2e.js';
import { control, spawnUntil, waitFor } from '../../helpers/e2e.js';
import type { NodeStatus } from '../../../node/runtime/node.js';

const running: Running[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

interface Node {
  name: string;
  peerId: string;
  dataDir: string;
  api: string;
}

/** A streaming chat request; resolves once the first content chunk arrived. */
async function openStream(api: string, body: Record<string, unknown>, ac: AbortController): Promise<{ servedBy: string; rest: Promise<string> }> {
  const res = await fetch(`${api}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny', stream: true, ...body }), signal: ac.signal });
  expect(res.status).toBe(200);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const dec = new TextDecoder();
  let text = '';
  while (!/"content":"[^"]/.test(text)) {
    const r = await reader.read();
    if (r.done) throw new Error(`stream ended before its first token: ${text}`);
    text += dec.decode(r.value, { stream: true });
  }
  const rest = (async () => {
    try {
      for (;;) {
        const r = await reader.read();
        if (r.done) return text;
        text += dec.decode(r.value, { stream: true });
      }
    } catch {
      return text; // aborted by us
    }
  })();
  return { servedBy: res.headers.get('x-fednode-served-by') ?? '', rest };
}

const backendLoad = async (n: Node): Promise<{ inFlight: number; capacity: number }> => {
  const s = await control<NodeStatus>(n.dataDir, '/status');
  const b = s.inference.backendHealth.find((x) => x.kind === 'llama-cpp');
  if (b === undefined) throw new Error('no llama-cpp backend in status');
  return b.load;
};

describe('fednode cluster --engine llama (real processes, real engine)', () => {
  it('answers through the API, forwards when the local sequences are full, and aborts mid-stream', async () => {
    const base = await mkdtemp(join(tmpdir(), 'fednode-e2e-llama-'));
    dirs.push(base);
    const cl = await spawnUntil(['cluster', '--nodes', '3', '--engine', 'llama', '--json', '--dir', base, '--advert-period', '250ms'], 'cluster-ready', 120_000);
    running.push(cl);
    const nodes = (cl.ready['nodes'] as Node[]).map((n) => ({ ...n }));
    const [a] = nodes as [Node, Node, Node];
    // every node serves the real model 'tiny' (not simulated) and node-1 sees all three
    await waitFor(
      'node-1 lists tiny on 3 nodes',
      async () => {
        const r = (await (await fetch(`${a.api}/v1/models`)).json()) as { data: Array<{ id: string; fednode?: { served_by?: string[]; simulated?: boolean } }> };
        const m = r.data.find((x) => x.id === 'tiny');
        return m?.fednode?.served_by?.length === 3 && m.fednode.simulated === false ? true : undefined;
      },
      60_000,
      250,
    );
    // capacity advertised = the engine's sequences (2 per node, from config), not a constant
    expect(await backendLoad(a)).toMatchObject({ capacity: 2, inFlight: 0 });

    // 1. a plain answer from the real engine
    const res = await fetch(`${a.api}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'hello' }], max_tokens: 12, temperature: 0.8, seed: 1 }) });
    expect(res.status).toBe(200);
    const j = (await res.json()) as { choices: Array<{ message: { content: string }; finish_reason: string }>; usage: { prompt_tokens: number; completion_tokens: number } };
    expect(j.choices[0]!.message.content).toMatch(/^[\x20-\x7e]*$/);
    expect(j.usage.prompt_tokens).toBeGreaterThan(10); // the GGUF's own tokeniser and ChatML template
    expect(j.usage.completion_tokens).toBeGreaterThan(0);

    // 2. fill node-1's two sequences with long greedy generations (served locally: least loaded, no RTT)...
    const long = { messages: [{ role: 'user', content: 'tell me a long story' }], max_tokens: 2000, temperature: 0 };
    const acs = [new AbortController(), new AbortController(), new AbortController()];
    const s1 = await openStream(a.api, long, acs[0]!);
    const s2 = await openStream(a.api, long, acs[1]!);
    const local = [s1.servedBy, s2.servedBy].filter((p) => p === a.peerId).length;
    await waitFor('node-1 engine busy', async () => ((await backendLoad(a)).inFlight === local ? true : undefined), 20_000, 100);
    // ...then a third request through node-1 goes to another member: forwarded A -> B over libp2p
    const s3 = await openStream(a.api, long, acs[2]!);
    if (local === 2) expect(s3.servedBy).not.toBe(a.peerId);
    const served = new Set([s1.servedBy, s2.servedBy, s3.servedBy]);
    expect(served.size).toBeGreaterThan(1); // at least one request was served by another node
    for (const p of served) expect(nodes.map((n) => n.peerId)).toContain(p);

    // 3. abort every stream mid-way: each serving engine stops and frees its sequence
    for (const ac of acs) ac.abort();
    for (const s of [s1, s2, s3]) {
      const text = await s.rest;
      expect(text).not.toContain('[DONE]'); // cut, not finished
    }
    for (const n of nodes) await waitFor(`${n.name} sequences free`, async () => ((await backendLoad(n)).inFlight === 0 ? true : undefined), 30_000, 100);
    // and the engines still answer
    const after = await fetch(`${a.api}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'again' }], max_tokens: 4 }) });
    expect(((await after.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBeGreaterThan(0);

    cl.child.kill('SIGINT');
    const e = await cl.exited;
    expect(e.code, cl.stderr().slice(-2000)).toBe(0);
  }, 300_000);
});
