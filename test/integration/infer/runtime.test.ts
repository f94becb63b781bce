// The inference API as the running node (node/runtime) serves it: status names the OpenAI
// base URL (with /v1) and the Ollama host, the advertised API URL is reachable (never a
// wildcard address), and the Ollama and OpenAI APIs route through a real 3-node cluster.
import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import { startRuntimeCluster, SIM_MODEL } from '../../helpers/runtime-cluster.js';
import type { RuntimeCluster } from '../../helpers/runtime-cluster.js';

let cluster: RuntimeCluster;

beforeAll(async () => {
  // (a wildcard bind's advertised URL is covered in test/unit/infer/surface.test.ts)
  cluster = await startRuntimeCluster(3);
}, 60_000);
afterAll(() => cluster.stop());

describe('runtime inference API', () => {
  it('status: openaiBaseUrl = apiUrl + /v1, ollamaBaseUrl = apiUrl, none of them 0.0.0.0', () => {
    for (const n of cluster.nodes) {
      const s = n.status();
      expect(s.apiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(s.openaiBaseUrl).toBe(`${s.apiUrl}/v1`);
      expect(s.ollamaBaseUrl).toBe(s.apiUrl);
      expect(s.inference.openaiBaseUrl).toBe(`${s.apiUrl}/v1`);
    }
  });

  it('the SDKs pasted with those URLs work and reach every member\'s model', async () => {
    const s = cluster.nodes[0]!.status();
    await vi.waitFor(
      async () => {
        const m = (await (await fetch(`${s.openaiBaseUrl}/models`)).json()) as { data: { fednode: { served_by: string[] } }[] };
        expect(m.data[0]!.fednode.served_by).toHaveLength(3);
      },
      { timeout: 20_000, interval: 100 },
    );
    const r = await new OpenAI({ baseURL: s.openaiBaseUrl!, apiKey: 'x', maxRetries: 0 }).chat.completions.create({ model: SIM_MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 });
    expect(r.choices[0]!.message.content!.split(' ')).toHaveLength(3);
    const o = await new Ollama({ host: s.ollamaBaseUrl! }).chat({ model: SIM_MODEL, messages: [{ role: 'user', content: 'hi' }], options: { num_predict: 3 } });
    expect(o.message.content.split(' ')).toHaveLength(3);
  });
});
