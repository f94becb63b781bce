import { describe, expect, it } from 'vitest';
import { ADDR_CHARS_MAX, ADDRS_PER_PEER_MAX, checkDialAddr, ownDialAddrs } from '../../../node/p2p/addrs.js';
import { ident } from '../../helpers/p2p.js';

const peer = ident(1).peerId;
const other = ident(2).peerId;

describe('checkDialAddr', () => {
  it('accepts ip4, ip6 and dns TCP addresses and drops a matching /p2p suffix', () => {
    expect(checkDialAddr('/ip4/192.168.1.7/tcp/4701')).toEqual({ ok: true, addr: '/ip4/192.168.1.7/tcp/4701' });
    expect(checkDialAddr(`/ip4/127.0.0.1/tcp/4701/p2p/${peer}`, peer)).toEqual({ ok: true, addr: '/ip4/127.0.0.1/tcp/4701' });
    expect(checkDialAddr('/ip6/fd00::7/tcp/4701').ok).toBe(true);
    expect(checkDialAddr('/dns4/gpu-box.lan/tcp/4701').ok).toBe(true);
  });

  it.each([
    [42, 'not a string'],
    ['', 'length'],
    ['x'.repeat(ADDR_CHARS_MAX + 65), 'length'],
    ['garbage', 'not a multiaddr'],
    ['/ip4/999.1.1.1/tcp/1', 'not a multiaddr'],
    ['/ip4/0.0.0.0/tcp/4701', 'unspecified'],
    ['/ip6/::/tcp/4701', 'unspecified'],
    ['/ip4/224.0.0.251/tcp/4701', 'multicast'],
    ['/ip4/255.255.255.255/tcp/4701', 'broadcast'],
    ['/ip4/10.0.0.1/tcp/0', 'port'],
    ['/ip4/10.0.0.1/udp/4701', 'only TCP'],
    ['/ip4/10.0.0.1', 'only TCP'],
    ['/tcp/4701', 'must start with'],
    ['/ip4/10.0.0.1/tcp/4701/ws', 'unexpected protocols'],
    [`/ip4/10.0.0.1/tcp/4701/p2p/${other}`, `not ${peer}`],
  ])('rejects %j (%s)', (addr, reason) => {
    const r = checkDialAddr(addr, peer);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toContain(reason);
  });
});

describe('ownDialAddrs', () => {
  it('announce wins; wildcards, /p2p and duplicates go; LAN before loopback; at most 8', () => {
    expect(ownDialAddrs([`/ip4/127.0.0.1/tcp/5/p2p/${peer}`, `/ip4/10.0.0.4/tcp/5/p2p/${peer}`, '/ip4/0.0.0.0/tcp/5', '/ip4/10.0.0.4/tcp/5'])).toEqual(['/ip4/10.0.0.4/tcp/5', '/ip4/127.0.0.1/tcp/5']);
    expect(ownDialAddrs(['/ip4/10.0.0.4/tcp/5'], ['/dns4/lab.example/tcp/4701'])).toEqual(['/dns4/lab.example/tcp/4701']);
    expect(ownDialAddrs(Array.from({ length: 12 }, (_, i) => `/ip4/10.0.0.${i + 1}/tcp/5`))).toHaveLength(ADDRS_PER_PEER_MAX);
  });
});
