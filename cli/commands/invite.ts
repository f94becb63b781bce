import type { Command } from '../command.js';
import { flagNumber } from '../command.js';

interface InviteReply {
  token: string;
  cluster: string;
  bootstrap: string[];
  expiresMs: number;
}

export const inviteCommand: Command = {
  name: 'invite',
  flags: [{ name: 'ttl', type: 'duration', placeholder: '<duration>', description: 'how long the token is valid (at most 7d)', defaultText: '1h' }],
  positionals: [],
  details: 'On the new machine: fednode join <token>',
  async run(ctx) {
    const ttlMs = flagNumber(ctx.args, 'ttl') ?? 3600_000; // 1 h, as INVITE_TTL_DEFAULT_MS (not imported: keeps start-up light)
    const client = await ctx.control();
    const r = await client.post<InviteReply>('/invite', { ttlMs });
    ctx.result(r, ctx.json ? '' : `${r.token}\n`);
    if (!ctx.json) ctx.err(`invite for cluster ${r.cluster}, valid until ${new Date(r.expiresMs).toISOString()}; on the new machine: fednode join <token>\n`);
    return 0;
  },
};
