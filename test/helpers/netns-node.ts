// Child process for the multi-host test: one fednode p2p host inside a network
// namespace, discovering peers by mDNS only. Run as
//   ip netns exec <ns> node --import tsx test/helpers/netns-node.ts <seedByte> <swarmKeyHex> <cluster> <genesisCsv>
// Prints JSON lines on stdout: {"event":"ready",...} then {"event":"peers",...} every 250 ms.
// Exits on SIGTERM or when stdin closes (the parent died).
import '../../node/polyfill.js';
import { identityFromSeed } from '../../crypto/keys.js';
import { createHost } from '../../node/p2p/host.js';
import { InviteMemberSource } from '../../node/p2p/members.js';
import { formatSwarmKey } from '../../node/p2p/psk.js';

async function main(): Promise<void> {
  const [seedByte, pskHex, cluster, genesisCsv] = process.argv.slice(2);
  if (seedByte === undefined || pskHex === undefined || cluster === undefined || genesisCsv === undefined) {
    process.stderr.write('usage: netns-node.ts <seedByte> <swarmKeyHex> <cluster> <genesisCsv>\n');
    process.exit(2);
  }
  const seed = new Uint8Array(32);
  seed[0] = Number(seedByte);
  seed[31] = 0x5a;
  const identity = identityFromSeed(seed);
  const members = new InviteMemberSource({ cluster, genesis: genesisCsv.split(','), now: Date.now });
  const host = await createHost({
    identity,
    cluster,
    swarmKey: formatSwarmKey(new Uint8Array(Buffer.from(pskHex, 'hex'))),
    members,
    listen: ['/ip4/0.0.0.0/tcp/0'],
    mdns: { intervalMs: 1000 },
  });
  await host.start();
  const say = (o: Record<string, unknown>): void => {
    process.stdout.write(JSON.stringify(o) + '\n');
  };
  say({ event: 'ready', peerId: host.peerId, addrs: host.addresses() });
  const timer = setInterval(() => say({ event: 'peers', peers: host.peers() }), 250);
  const stop = (): void => {
    clearInterval(timer);
    void host.stop().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
}

main().catch((err: unknown) => {
  process.stderr.write(`netns-node failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
