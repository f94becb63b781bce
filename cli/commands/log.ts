import type { Command } from '../command.js';
import { flagNumber } from '../command.js';
import type { LogJson } from '../../node/runtime/consensus-routes.js';
import { LOG_LIMIT_DEFAULT, LOG_LIMIT_MAX } from '../../node/runtime/consensus-routes.js';
import { opSummary } from '../../node/runtime/consensus-ops.js';
import { answered } from './consensus-common.js';

export const logCommand: Command = {
  name: 'log',
  flags: [
    { name: 'from', type: 'int', min: 1, placeholder: '<height>', description: 'first height to show', defaultText: `the last ${LOG_LIMIT_DEFAULT}` },
    { name: 'limit', type: 'int', min: 1, max: LOG_LIMIT_MAX, placeholder: '<n>', description: 'heights to show', defaultText: String(LOG_LIMIT_DEFAULT) },
  ],
  positionals: [],
  async run(ctx) {
    const q = new URLSearchParams();
    const from = flagNumber(ctx.args, 'from');
    const limit = flagNumber(ctx.args, 'limit');
    if (from !== undefined) q.set('from', String(from));
    if (limit !== undefined) q.set('limit', String(limit));
    const client = await ctx.control();
    const l = await answered(() => client.get<LogJson>(`/consensus/log${q.size > 0 ? `?${q.toString()}` : ''}`));
    const out: string[] = [`decided height ${l.decidedHeight}`];
    if (l.entries.length === 0) out.push('no decided heights in this range');
    for (const e of l.entries) {
      out.push(`height ${e.height}  round ${e.round}  value ${e.valueId.slice(0, 16)}  registry ${e.registryHash.slice(0, 16)}  signers ${e.signers.length}`);
      if (e.ops.length === 0) out.push('  (empty)');
      for (const op of e.ops.slice(0, 10)) out.push(`  ${opSummary(op)}`);
      if (e.ops.length > 10) out.push(`  … ${e.ops.length - 10} more op(s)`);
    }
    ctx.result(l, out.join('\n') + '\n');
    return 0;
  },
};
