import type { Command } from '../command.js';
import type { PeerView } from '../../node/runtime/adverts.js';
import type { PeerSummary } from '../../node/p2p/host.js';
import { ago, num, shortId, table } from './format.js';

export interface PeersReply {
  peers: PeerView[];
  members: string[];
  connections: PeerSummary[];
}

export const peersCommand: Command = {
  name: 'peers',
  flags: [],
  positionals: [],
  details: 'STATE: live (advert within 3 periods), stale (older), none (member without an advert yet; gone peers are dropped after 10 periods).',
  async run(ctx) {
    const r = await (await ctx.control()).get<PeersReply>('/peers');
    const status = await (await ctx.control()).get<{ peerId: string }>('/status');
    const byId = new Map(r.peers.map((p) => [p.peerId, p]));
    const conn = new Map(r.connections.map((c) => [c.peerId, c]));
    const ids = [...new Set([...r.members, ...r.peers.map((p) => p.peerId)])].filter((id) => id !== status.peerId).sort();
    const rows = ids.map((id) => {
      const p = byId.get(id);
      const a = p?.advert;
      const gpus = a === undefined ? '-' : a.gpus.length === 0 ? 'none' : a.gpus.map((g) => `${g.name} ${num(g.utilizationPct, 0, '%')}`).join('; ');
      return [
        shortId(id),
        p?.state ?? 'none',
        ago(p?.ageMs ?? null),
        (conn.get(id)?.connections ?? 0) > 0 ? 'yes' : 'no',
        a?.profile ?? '-',
        a === undefined ? '-' : `${num(a.cpuLoad)} ${a.inFlight}/${a.capacity}`,
        gpus,
        a === undefined ? '-' : a.models.join(',') || '-',
      ];
    });
    ctx.result(r, rows.length === 0 ? 'no other members known yet\n' : table(['PEER', 'STATE', 'AGE', 'CONN', 'PROFILE', 'LOAD', 'GPUS', 'MODELS'], rows));
    return 0;
  },
};
