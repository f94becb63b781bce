// A damaged address book stops `fednode start` (in process, real data directory) with exit 5
// and a message naming the file and the recovery; the file is left as it was (no silent reset),
// and the node starts once the operator moved it away.
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../cli/run.js';
import { ADDRESS_BOOK_FILE, startNode } from '../../../node/runtime/node.js';
import { initDataDir } from '../../../node/runtime/init.js';
import { nullLogger } from '../../../node/log.js';

let base = '';
afterAll(async () => {
  if (base !== '') await rm(base, { recursive: true, force: true });
});

describe('address book on start', () => {
  it('corrupt addresses.json: exit 5 naming the file and the fix, file untouched; starts after it is moved away', async () => {
    base = await mkdtemp(join(tmpdir(), 'fednode-addrbook-'));
    const dir = join(base, 'n');
    await initDataDir({ dir, newCluster: true, nowMs: Date.now(), config: { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: { enabled: false }, api: { port: 0 } } });
    const book = join(dir, ADDRESS_BOOK_FILE);
    const garbage = '{"version":1,"peers":{"12D3KooWnot-a-peer":[]}}';
    await writeFile(book, garbage);
    let err = '';
    const code = await runCli(['start', '--data-dir', dir], { out: () => undefined, err: (s) => (err += s), env: {} });
    expect(code).toBe(5);
    expect(err).toContain(book);
    expect(err).toContain('move it away');
    expect(await readFile(book, 'utf8')).toBe(garbage);
    await rename(book, `${book}.damaged`);
    const node = await startNode({ dataDir: dir, logger: nullLogger });
    expect(node.status().mesh).toMatchObject({ targets: 0, connected: 0, missing: [] });
    await node.stop();
  }, 60_000);
});
