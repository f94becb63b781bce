/**
 * doctor's backend check (issue 17) against real HTTP: an OpenAI-compatible server replaying the
 * recorded llama.cpp server answers (../shared/recordings/llama-server: models.txt,
 * chat-stream.txt; recorded from a real llama-server), an Ollama address where nothing listens,
 * and a server that lists a model but fails every chat.
 */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { apiChecks, backendChecks } from '../../../cli/commands/doctor-ops.js';
import type { CheckStatus } from '../../../cli/commands/doctor.js';
import { validateConfig } from '../../../node/config.js';
import { ROOT } from '../../helpers/e2e.js';

const REC = join(ROOT, '..', 'shared', 'recordings', 'llama-server');

/** The body of a recorded `curl -i` answer (after the header block). */
async function recordedBody(file: string): Promise<{ type: string; body: string }> {
  const text = await readFile(join(REC, file), 'utf8');
  // `curl -i` keeps the server's CRLF header lines; the body follows the first empty line
  const headerEnd = text.indexOf('\r\n\r\n', text.indexOf('HTTP/1.1'));
  const headers = text.slice(0, headerEnd);
  return { type: /Content-Type: ([^\r\n]+)/i.exec(headers)?.[1]?.trim() ?? 'application/octet-stream', body: text.slice(headerEnd + 4) };
}

const servers: Server[] = [];
afterAll(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
});
async function serve(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const s = createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}/v1`;
}

type Row = { name: string; status: CheckStatus; detail: string; fix: string | null };
function collector(rows: Row[]) {
  return (name: string, status: CheckStatus, detail: string, fix: string | null = null): void => {
    rows.push({ name, status, detail, fix });
  };
}

describe('doctor: backends and API', () => {
  it('reports the recorded llama.cpp server ok with its 1-token chat, a dead Ollama and a failing chat with their fixes', async () => {
    const models = await recordedBody('models.txt');
    const stream = await recordedBody('chat-stream.txt');
    const llama = await serve((req, res) => {
      req.resume();
      const r = req.url === '/v1/models' ? models : stream;
      res.writeHead(200, { 'content-type': r.type });
      res.end(r.body);
    });
    const failing = await serve((req, res) => {
      req.resume();
      if (req.url === '/v1/models') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'list', data: [{ id: 'm', object: 'model' }] }));
      } else {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'model failed to load' } }));
      }
    });
    const config = validateConfig(
      {
        backends: [
          { kind: 'openai', id: 'llama', baseUrl: llama },
          { kind: 'ollama', id: 'ollama', baseUrl: 'http://127.0.0.1:9' },
          { kind: 'openai', id: 'broken', baseUrl: failing },
        ],
      },
      'config.json',
    );
    const rows: Row[] = [];
    await backendChecks(config, 'config.json', collector(rows));
    expect(rows.find((r) => r.name === 'backend llama')).toMatchObject({ status: 'ok', detail: expect.stringMatching(/1 model\(s\) \(tiny-llama\); 1-token chat with tiny-llama answered in \d+ ms/) });
    expect(rows.find((r) => r.name === 'backend ollama')).toMatchObject({ status: 'fail', detail: expect.stringContaining('not reachable'), fix: expect.stringContaining('ollama serve') });
    expect(rows.find((r) => r.name === 'backend broken')).toMatchObject({ status: 'fail', detail: expect.stringContaining('1-token chat with m failed') });
  });

  it('the API bind: loopback passes, beyond loopback with a key passes, disabled is skipped (no key beyond loopback is a config error)', async () => {
    expect(() => validateConfig({ api: { host: '0.0.0.0' } }, 'c.json')).toThrow(/api.apiKey: required/);
    const lan: Row[] = [];
    await apiChecks(validateConfig({ api: { host: '0.0.0.0', apiKey: 'k'.repeat(16) } }, 'c.json'), 'c.json', null, collector(lan));
    expect(lan[0]).toMatchObject({ name: 'api bind', status: 'ok', detail: expect.stringContaining('beyond loopback with the API key') });
    const ok: Row[] = [];
    await apiChecks(validateConfig({}, 'c.json'), 'c.json', null, collector(ok));
    expect(ok[0]).toMatchObject({ name: 'api bind', status: 'ok' });
    const off: Row[] = [];
    await apiChecks(validateConfig({ api: { enabled: false } }, 'c.json'), 'c.json', null, collector(off));
    expect(off[0]).toMatchObject({ name: 'api', status: 'skip' });
  });

  it('with a running API and a key: refused without it, answered with it', async () => {
    const key = 'k'.repeat(24);
    const api = (await serve((req, res) => {
      req.resume();
      const ok = req.url === '/healthz' || req.headers['authorization'] === `Bearer ${key}`;
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
      res.end('{}');
    })).replace(/\/v1$/, '');
    const rows: Row[] = [];
    await apiChecks(validateConfig({ api: { host: '0.0.0.0', apiKey: key } }, 'c.json'), 'c.json', api, collector(rows));
    expect(rows.find((r) => r.name === 'api key')).toMatchObject({ status: 'ok', detail: expect.stringContaining('refused without the key (401)') });
  });
});
