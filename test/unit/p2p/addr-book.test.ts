import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AddressBook } from '../../../node/p2p/addr-book.js';
import { ADDRS_PER_PEER_MAX } from '../../../node/p2p/addrs.js';
import { P2pError } from '../../../node/p2p/errors.js';
import { ident } from '../../helpers/p2p.js';

const a = ident(1).peerId;
const b = ident(2).peerId;
let dir = '';
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fednode-addrbook-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function corruptCode(text: string): Promise<P2pError> {
  const path = join(dir, 'addresses.json');
  await writeFile(path, text);
  const err = await AddressBook.open(path).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(P2pError);
  expect((err as P2pError).code).toBe('ERR_ADDRBOOK_CORRUPT');
  expect((err as P2pError).message).toContain(path);
  expect((err as P2pError).message).toContain('move it away');
  // never silently reset: the damaged file is still there, byte for byte
  expect(await readFile(path, 'utf8')).toBe(text);
  return err as P2pError;
}

describe('AddressBook', () => {
  it('identify / advert replace a peer list, bootstrap / peer-store add to it; garbage is refused and reported', () => {
    const book = AddressBook.inMemory();
    expect(book.learn(a, ['/ip4/10.0.0.1/tcp/4701'], 'bootstrap', 1)).toEqual({ added: 1, rejected: [] });
    book.learn(a, ['/ip4/10.0.0.2/tcp/4701'], 'peer-store', 2);
    expect(book.get(a)).toEqual(['/ip4/10.0.0.2/tcp/4701', '/ip4/10.0.0.1/tcp/4701']);
    // the peer restarted on a new port: its own list replaces the old one (no dialling the dead port first)
    const r = book.learn(a, ['/ip4/10.0.0.1/tcp/5000', '/ip4/0.0.0.0/tcp/5000', `/ip4/10.0.0.3/tcp/1/p2p/${b}`, 'junk'], 'identify', 3);
    expect(r.added).toBe(1);
    expect(r.rejected.map((x) => x.addr)).toEqual(['/ip4/0.0.0.0/tcp/5000', `/ip4/10.0.0.3/tcp/1/p2p/${b}`, 'junk']);
    expect(book.get(a)).toEqual(['/ip4/10.0.0.1/tcp/5000']);
    // only garbage: nothing changes
    expect(book.learn(a, ['/ip6/::/tcp/1'], 'advert', 4).added).toBe(0);
    expect(book.get(a)).toEqual(['/ip4/10.0.0.1/tcp/5000']);
  });

  it('bounds addresses per peer', () => {
    const book = AddressBook.inMemory();
    book.learn(a, Array.from({ length: 20 }, (_, i) => `/ip4/10.0.1.${i + 1}/tcp/1`), 'peer-store', 1);
    expect(book.get(a)).toHaveLength(ADDRS_PER_PEER_MAX);
  });

  it('persists across reopen (atomic file) and retain() forgets non-members', async () => {
    const path = join(dir, 'addresses.json');
    const book = await AddressBook.open(path); // missing file: empty book
    expect(book.size()).toBe(0);
    book.learn(a, ['/ip4/10.0.0.1/tcp/4701'], 'advert', 10);
    book.learn(b, ['/ip4/10.0.0.2/tcp/4701'], 'identify', 20);
    await book.flush();
    const again = await AddressBook.open(path);
    expect(again.get(a)).toEqual(['/ip4/10.0.0.1/tcp/4701']);
    expect(again.entries(b)).toEqual([{ addr: '/ip4/10.0.0.2/tcp/4701', source: 'identify', seenMs: 20 }]);
    again.retain(new Set([b]));
    await again.flush();
    expect((await AddressBook.open(path)).has(a)).toBe(false);
  });

  it('a damaged file is a clear error naming the file and the fix, never a silent reset', async () => {
    expect((await corruptCode('{not json')).data['reason']).toMatch(/not JSON/);
    expect((await corruptCode('[]')).data['reason']).toMatch(/not an object/);
    expect((await corruptCode('{"version":2,"peers":{}}')).data['reason']).toMatch(/version/);
    expect((await corruptCode('{"version":1,"peers":{},"x":1}')).data['reason']).toMatch(/unknown field/);
    expect((await corruptCode('{"version":1,"peers":{"nope":[{"addr":"/ip4/10.0.0.1/tcp/1","source":"advert","seenMs":1}]}}')).data['reason']).toMatch(/not a peer id/);
    expect((await corruptCode(`{"version":1,"peers":{"${a}":[{"addr":"/ip4/0.0.0.0/tcp/1","source":"advert","seenMs":1}]}}`)).data['reason']).toMatch(/unspecified/);
    expect((await corruptCode(`{"version":1,"peers":{"${a}":[{"addr":"/ip4/10.0.0.1/tcp/1","source":"rumour","seenMs":1}]}}`)).data['reason']).toMatch(/unknown source/);
    expect((await corruptCode(`{"version":1,"peers":{"${a}":[{"addr":"/ip4/10.0.0.1/tcp/1","source":"advert","seenMs":-1}]}}`)).data['reason']).toMatch(/seenMs/);
    expect((await corruptCode(`{"version":1,"peers":{"${a}":[]}}`)).data['reason']).toMatch(/entries/);
  });
});
