/**
 * Dialable addresses: what a node tells others it can be reached at (its adverts' `addrs`)
 * and what this node accepts from identify, the peer store and adverts before it ever dials
 * it. Pure (multiaddr parsing only). The transport is TCP (host.ts), so an address is exactly
 * `/ip4|ip6|dns4|dns6|dns/<host>/tcp/<port>`, optionally ending in `/p2p/<the peer's id>`.
 * Checks in order, cheapest first; each failure names its rule.
 */
import { multiaddr } from '@multiformats/multiaddr';

/** Addresses kept per peer: a host has a few interfaces (LAN, VPN, loopback); 8 covers them and bounds the advert (8 x 256 chars). */
export const ADDRS_PER_PEER_MAX = 8;
/** A /dns4 name is at most 253 characters; with protocol names and a port, 256 holds any real address (the /p2p suffix is not kept). */
export const ADDR_CHARS_MAX = 256;

export type AddrCheck = { readonly ok: true; readonly addr: string } | { readonly ok: false; readonly reason: string };

const HOST_PROTOCOLS = new Set(['ip4', 'ip6', 'dns4', 'dns6', 'dns']);

function unroutable(proto: string, host: string): string | null {
  if (proto === 'ip4') {
    if (host === '0.0.0.0') return 'unspecified address 0.0.0.0 is a listen wildcard, not dialable';
    if (host === '255.255.255.255') return 'broadcast address';
    const first = Number(host.split('.')[0]);
    if (first >= 224 && first <= 239) return 'multicast address';
  }
  if (proto === 'ip6') {
    const h = host.toLowerCase();
    if (h === '::' || /^0*(:0*)*::?0*$/.test(h)) return 'unspecified address :: is a listen wildcard, not dialable';
    if (h.startsWith('ff')) return 'multicast address';
  }
  return null;
}

/**
 * Check one address a peer claims (advert, identify, peer store). `peerId`, when given, must
 * match a /p2p suffix. Returns the canonical form WITHOUT /p2p (the book is keyed by peer).
 */
export function checkDialAddr(text: unknown, peerId?: string): AddrCheck {
  // [type] a string
  if (typeof text !== 'string') return { ok: false, reason: 'not a string' };
  // [size] bounded before parsing (a peer's megabyte string is not parsed)
  if (text.length === 0 || text.length > ADDR_CHARS_MAX + 64) return { ok: false, reason: `length ${text.length} outside 1..${ADDR_CHARS_MAX + 64}` };
  let tuples: ReadonlyArray<readonly [number, string?]>;
  let names: string[];
  try {
    const ma = multiaddr(text);
    tuples = ma.stringTuples();
    names = ma.protoNames();
  } catch (e) {
    return { ok: false, reason: `not a multiaddr: ${e instanceof Error ? e.message : String(e)}` };
  }
  // [shape] host / tcp / port [/ p2p / id]
  const [hostProto, tcp, p2p] = names;
  if (hostProto === undefined || !HOST_PROTOCOLS.has(hostProto)) return { ok: false, reason: `must start with /ip4, /ip6 or /dns*: ${names.join('/')}` };
  if (tcp !== 'tcp') return { ok: false, reason: `only TCP is dialled, got /${names.join('/')}` };
  if (names.length > 3 || (p2p !== undefined && p2p !== 'p2p')) return { ok: false, reason: `unexpected protocols after tcp: /${names.join('/')}` };
  const host = tuples[0]?.[1] ?? '';
  const port = Number(tuples[1]?.[1]);
  // [port] 0 is "any" when listening; dialling it means nothing
  if (!Number.isInteger(port) || port < 1 || port > 65535) return { ok: false, reason: `port ${String(tuples[1]?.[1])} outside 1..65535` };
  // [routable] no wildcard, broadcast or multicast hosts
  const bad = unroutable(hostProto, host);
  if (bad !== null) return { ok: false, reason: bad };
  // [identity] a /p2p suffix names the peer the address belongs to
  const id = tuples[2]?.[1];
  if (id !== undefined && peerId !== undefined && id !== peerId) return { ok: false, reason: `address names peer ${id}, not ${peerId}` };
  const addr = `/${hostProto}/${host}/tcp/${port}`;
  if (addr.length > ADDR_CHARS_MAX) return { ok: false, reason: `longer than ${ADDR_CHARS_MAX} characters` };
  return { ok: true, addr };
}

/**
 * This node's own addresses worth telling others: announce ones if configured, else the
 * listen addresses libp2p reports (wildcards already expanded to interfaces), without /p2p,
 * unspecified hosts or duplicates; non-loopback first (another machine can dial them), at
 * most ADDRS_PER_PEER_MAX.
 */
export function ownDialAddrs(listen: readonly string[], announce: readonly string[] = []): string[] {
  const out: string[] = [];
  for (const a of announce.length > 0 ? announce : listen) {
    const c = checkDialAddr(a);
    if (c.ok && !out.includes(c.addr)) out.push(c.addr);
  }
  const loop = (a: string): boolean => a.startsWith('/ip4/127.') || a === '/ip6/::1' || a.startsWith('/ip6/::1/');
  return [...out.filter((a) => !loop(a)), ...out.filter(loop)].slice(0, ADDRS_PER_PEER_MAX);
}
