import type { Command } from '../command.js';
import { flagNumber } from '../command.js';
import type { CommitReceipt } from '../../node/consensus/api.js';
import type { PendingJoin } from '../../node/runtime/admission.js';
import { answered, certificateSummary } from './consensus-common.js';
import { ago, table } from './format.js';

const WAIT_MS_DEFAULT = 30_000;
const HTTP_SLACK_MS = 5_000;

export const approveCommand: Command = {
  name: 'approve',
  flags: [{ name: 'wait', type: 'duration', placeholder: '<duration>', description: 'how long to wait for the commit', defaultText: '30s' }],
  positionals: [{ name: 'peer', required: false, description: 'peer id of the joining node (see `fednode approve` with no argument)' }],
  async run(ctx) {
    const client = await ctx.control();
    const peer = ctx.args.positionals[0];
    if (peer === undefined) {
      const j = await answered(() => client.get<{ mode: string; pending: PendingJoin[] }>('/consensus/joins'));
      const now = ctx.now();
      const human =
        j.pending.length === 0
          ? `no joins waiting (admission mode: ${j.mode})\n`
          : `admission mode: ${j.mode}\n` + table(['PEER', 'NAME', 'INVITED BY', 'SEEN', 'CLAIMS'], j.pending.map((p) => [p.peer, p.name, p.inviter, `${ago(now - p.seenMs)} ago`, p.claims === undefined ? '-' : `${p.claims}, last ${ago(now - (p.lastSeenMs ?? now))} ago`]));
      ctx.result(j, human);
      return 0;
    }
    const waitMs = flagNumber(ctx.args, 'wait') ?? WAIT_MS_DEFAULT;
    const r = await answered(() => client.post<CommitReceipt & { peer: string; name: string; hadClaim: boolean }>('/consensus/approve', { peer, waitMs }, { timeoutMs: waitMs + HTTP_SLACK_MS }));
    ctx.result(r, `approved ${r.peer} (${r.name}): member.add committed at height ${r.height} (round ${r.round}), in force from height ${r.height + 2}\n  certificate    ${certificateSummary(r)}\n  registry hash  ${r.registryHash}\n`);
    return 0;
  },
};
