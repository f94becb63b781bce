// Replays recorded `curl -i` transcripts (test/fixtures/infer/llama-server/) over real HTTP:
// each route answers with the recorded status, content type and body, byte for byte.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';

export interface Recorded {
  status: number;
  contentType: string;
  body: string;
}

/** Parses the first response of a transcript: `$ curl ...`, status line, headers, blank line, body. */
export function readTranscript(path: string): Recorded {
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.startsWith('HTTP/1.1 '));
  const status = Number(lines[at]!.split(' ')[1]);
  let i = at + 1;
  let contentType = 'application/json';
  for (; i < lines.length && lines[i]!.replace(/\r$/, '') !== ''; i++) {
    const m = /^content-type:\s*(.*)$/i.exec(lines[i]!.replace(/\r$/, ''));
    if (m !== null) contentType = m[1]!;
  }
  let body = lines.slice(i + 1).join('\n');
  const next = body.indexOf('\n$ curl'); // a transcript may hold a second command
  if (next >= 0) body = body.slice(0, next + 1);
  return { status, contentType, body };
}

export async function replayServer(routes: Record<string, Recorded>): Promise<{ url: string; seen: string[]; close: () => Promise<void> }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    const key = `${req.method ?? 'GET'} ${(req.url ?? '/').split('?')[0] ?? '/'}`;
    seen.push(key);
    req.resume();
    req.on('end', () => {
      const r = routes[key];
      if (r === undefined) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"error":{"code":404,"message":"File Not Found","type":"not_found_error"}}');
        return;
      }
      res.writeHead(r.status, { 'content-type': r.contentType });
      res.end(r.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const a = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${a.port}`,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
