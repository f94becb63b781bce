/**
 * A peer with a different swarm.key (issue 17): real libp2p hosts on loopback. The dial fails,
 * both sides count the failed cluster-key check with the remote address, and the warning is
 * logged once per minute however often the peer redials; same-key peers count nothing.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { generateSwarmKey } from '../../../node/p2p/psk.js';
import type { Logger } from '../../../node/log.js';
import type { TestNode } from '../../helpers/p2p.js';
import { ident, startNode, stopAll, waitFor } from '../../helpers/p2p.js';

const nodes: TestNode[] = [];
afterAll(() => stopAll(nodes));

function recordingLogger(lines: Array<{ level: string; msg: string; fields: Record<string, unknown> }>): Logger {
  const make = (): Logger => {
    const l: Logger = {
      debug: () => undefined,
      info: (msg, fields) => lines.push({ level: 'info', msg, fields: fields ?? {} }),
      warn: (msg, fields) => lines.push({ level: 'warn', msg, fields: fields ?? {} }),
      error: (msg, fields) => lines.push({ level: 'error', msg, fields: fields ?? {} }),
      child: () => make(),
    };
    return l;
  };
  return make();
}

describe('cluster key (pnet) mismatch', () => {
  it('is counted on both sides with the address, logged once a minute, and nothing is counted for the right key', async () => {
    const [a, b, c] = [ident(1), ident(2), ident(3)];
    const genesis = [a.peerId, b.peerId, c.peerId];
    const key = generateSwarmKey();
    const logA: Array<{ level: string; msg: string; fields: Record<string, unknown> }> = [];
    const na = await startNode(a, { swarmKey: key, genesis, extra: { logger: recordingLogger(logA) } });
    const nb = await startNode(b, { swarmKey: generateSwarmKey(), genesis }); // the other key
    const nc = await startNode(c, { swarmKey: key, genesis });
    nodes.push(na, nb, nc);

    // right key: connects, nothing counted
    await nc.host.dial(na.host.addresses()[0]!);
    expect(na.host.pnetFailures().failures).toBe(0);
    expect(nc.host.pnetFailures().failures).toBe(0);

    // wrong key, three dials: each fails, a counts the inbound failures, b its outbound ones.
    // When both sides wait on each other's garbled noise, b's dial times out (10 s) a moment before
    // its upgrade is aborted; a dial started in that moment joins the attempt still in flight in
    // libp2p's dial queue (no new connection, nothing more to count). So each dial waits for b to
    // have counted its connection: three dials, three connections.
    for (let i = 0; i < 3; i++) {
      await expect(nb.host.dial(na.host.addresses()[0]!)).rejects.toThrow();
      await waitFor(() => nb.host.pnetFailures().failures >= i + 1, 30_000, `b to count failure ${i + 1}`);
    }
    // a (the listener) sees each failure when the dialer hangs up, or when its own inbound upgrade
    // times out (10 s): wait past that
    await waitFor(() => na.host.pnetFailures().failures >= 3, 30_000, 'a to count 3 failures');
    expect(nb.host.pnetFailures().failures).toBe(3);
    const recent = na.host.pnetFailures().recent;
    expect(recent.at(-1)?.remoteAddr).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+/);
    expect(recent.at(-1)?.error).toMatch(/Error/);
    expect(na.host.pnetFailures().lastAtMs).not.toBeNull();

    // logged once (rate limit: one line a minute), naming the fix
    const warned = logA.filter((l) => l.msg.includes('cluster key'));
    expect(warned).toHaveLength(1);
    expect(warned[0]!.msg).toContain('different swarm.key');
    expect(warned[0]!.fields['remote']).toMatch(/127\.0\.0\.1/);
    expect(na.host.pnetFailures().failures).toBe(3);
    expect(nc.host.pnetFailures().failures).toBe(0);
  }, 120_000); // up to three 10 s upgrade timeouts on each side
});
