// The mesh keeper against a scripted transport and clock (no network): who it dials, with
// which addresses, when it tries again, what status says, and what it refuses.
import { afterEach, describe, expect, it } from 'vitest';
import { AddressBook } from '../../../node/p2p/addr-book.js';
import type { MemberChange, MemberSource } from '../../../node/p2p/members.js';
import { MeshKeeper } from '../../../node/p2p/mesh.js';
import { ident } from '../../helpers/p2p.js';

const [self, a, b, c, stranger] = [1, 2, 3, 4, 5].map((n) => ident(n).peerId) as [string, string, string, string, string];

class Members implements MemberSource {
  private readonly set: Set<string>;
  private readonly listeners = new Set<(ev: MemberChange) => void>();
  constructor(ids: readonly string[]) {
    this.set = new Set(ids);
  }
  isMember = (p: string): boolean => this.set.has(p);
  members = (): readonly string[] => [...this.set];
  onChange(l: (ev: MemberChange) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  add(p: string): void {
    this.set.add(p);
    for (const l of this.listeners) l({ added: [p], removed: [] });
  }
}

interface Dial {
  peer: string;
  addrs: readonly string[];
  resolve(): void;
  reject(e: Error): void;
}

function setup(o: { members: string[]; bootstrap?: Map<string, string[]> }) {
  let nowMs = 1_000;
  const dials: Dial[] = [];
  const connected = new Set<string>();
  const members = new Members(o.members);
  const keeper = new MeshKeeper({
    self,
    members,
    book: AddressBook.inMemory(),
    bootstrap: o.bootstrap ?? new Map(),
    backoff: { baseMs: 1_000, maxMs: 8_000, maxAttempts: 3, maxInFlight: 2 },
    tickMs: 3_600_000, // no ticks: the test calls evaluate()
    now: () => nowMs,
    rand: () => 0.5,
    transport: {
      dial: (peer, addrs) =>
        new Promise<void>((resolve, reject) => {
          dials.push({ peer, addrs, resolve, reject });
        }),
      isConnected: (p) => connected.has(p),
    },
  });
  return { keeper, dials, connected, members, advance: (ms: number) => (nowMs += ms) };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));
let stopMe: MeshKeeper | null = null;
afterEach(async () => {
  await stopMe?.stop();
  stopMe = null;
});

describe('MeshKeeper', () => {
  it('dials a bootstrap peer at start, a member once an advert names its address, and nobody for a non-member', async () => {
    const t = setup({ members: [self, a, b], bootstrap: new Map([[a, [`/ip4/127.0.0.1/tcp/4001/p2p/${a}`]]]) });
    stopMe = t.keeper;
    t.keeper.start();
    expect(t.dials.map((d) => [d.peer, d.addrs])).toEqual([[a, ['/ip4/127.0.0.1/tcp/4001']]]);
    expect(t.keeper.status().missing.find((m) => m.peer === b)?.reason).toBe('no-address');
    // a non-member's addresses are not kept, and it is never dialled
    expect(t.keeper.learn(stranger, ['/ip4/127.0.0.1/tcp/4009'], 'identify').added).toBe(0);
    // b's advert: new address -> dialled at once; garbage refused and counted, never dialled
    const r = t.keeper.learn(b, ['/ip4/127.0.0.1/tcp/4002', '/ip4/0.0.0.0/tcp/4002'], 'advert');
    expect(r.rejected).toHaveLength(1);
    expect(t.dials.map((d) => d.peer)).toEqual([a, b]);
    expect(t.dials[1]!.addrs).toEqual(['/ip4/127.0.0.1/tcp/4002']);
    expect(t.keeper.status()).toMatchObject({ targets: 2, connected: 0, rejectedAddrs: 1, mode: 'full' });
    t.connected.add(a);
    t.dials[0]!.resolve();
    t.keeper.connected(a);
    await settle();
    expect(t.keeper.status()).toMatchObject({ connected: 1, missing: [{ peer: b, reason: 'dialling' }] });
  });

  it('a failed dial waits its backoff, a new address cuts it short, a membership change adds a target', async () => {
    const t = setup({ members: [self, a] });
    stopMe = t.keeper;
    t.keeper.start();
    t.keeper.learn(a, ['/ip4/127.0.0.1/tcp/4001'], 'advert');
    t.dials[0]!.reject(new Error('ECONNREFUSED'));
    await settle();
    expect(t.keeper.status().missing[0]).toMatchObject({ peer: a, reason: 'backoff', failures: 1, nextInMs: 1_000, lastError: 'ECONNREFUSED' });
    t.advance(999);
    t.keeper.evaluate();
    expect(t.dials).toHaveLength(1); // still waiting
    t.advance(1);
    t.keeper.evaluate();
    expect(t.dials).toHaveLength(2);
    t.dials[1]!.reject(new Error('ECONNREFUSED'));
    await settle();
    expect(t.keeper.status().missing[0]).toMatchObject({ failures: 2, nextInMs: 2_000 });
    // a's own list says it moved: dialled at once at the new port, backoff forgotten
    t.keeper.learn(a, ['/ip4/127.0.0.1/tcp/5001'], 'identify');
    expect(t.dials[2]!.addrs).toEqual(['/ip4/127.0.0.1/tcp/5001']);
    t.dials[2]!.reject(new Error('ECONNREFUSED'));
    await settle();
    // a disconnect is new information too: redial at once
    t.keeper.disconnected(a);
    expect(t.dials).toHaveLength(4);
    // a new member with a known address becomes a target and is dialled
    t.keeper.learn(c, ['/ip4/127.0.0.1/tcp/4003'], 'advert'); // not a member yet: ignored
    t.members.add(c);
    expect(t.keeper.status().targets).toBe(2);
    t.keeper.learn(c, ['/ip4/127.0.0.1/tcp/4003'], 'advert');
    expect(t.dials.at(-1)!.peer).toBe(c);
  });

  it('parks a target after maxAttempts failures and says so', async () => {
    const t = setup({ members: [self, a] });
    stopMe = t.keeper;
    t.keeper.start();
    t.keeper.learn(a, ['/ip4/127.0.0.1/tcp/4001'], 'advert');
    for (let i = 0; i < 3; i++) {
      t.dials.at(-1)!.reject(new Error('EHOSTUNREACH'));
      await settle();
      t.advance(10_000);
      t.keeper.evaluate();
    }
    expect(t.dials).toHaveLength(3);
    expect(t.keeper.status().missing[0]).toMatchObject({ reason: 'gave-up', failures: 3, nextInMs: null, addrs: ['/ip4/127.0.0.1/tcp/4001'] });
  });
});
