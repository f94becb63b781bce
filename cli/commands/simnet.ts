import type { Command } from '../command.js';
import { flagString, flagNumber, flagBool } from '../command.js';
import { formatSummaryTable, parseSimnetArgs, runSimnet } from '../../simnet/index.js';

// Flags are declared here for help and type checks; the simnet's own parser
// (simnet/run.ts parseSimnetArgs) stays the one place that validates their
// ranges and combinations, so the CLI rebuilds an argv for it.
const INT_FLAGS = ['nodes', 'byzantine', 'seeds', 'heights', 'seed'] as const;
const LIST_FLAGS = ['faults', 'byz-behaviours'] as const;

export const simnetCommand: Command = {
  name: 'simnet',
  flags: [
    { name: 'nodes', type: 'int', placeholder: '<n>', description: 'validators (1..100)', defaultText: '4' },
    { name: 'byzantine', type: 'int', placeholder: '<b>', description: 'Byzantine nodes; more than floor((n-1)/3) is a negative control', defaultText: 'floor((n-1)/3)' },
    { name: 'seeds', type: 'int', placeholder: '<k>', description: 'seeds to run (seed, seed+1, ...)', defaultText: '100' },
    { name: 'heights', type: 'int', placeholder: '<h>', description: 'heights every honest node must decide', defaultText: '20' },
    { name: 'faults', type: 'string', placeholder: '<list>', description: 'loss,tail,reorder,duplicate,partition,crash,skew,churn | all | none', defaultText: 'all' },
    { name: 'byz-behaviours', type: 'string', placeholder: '<list>', description: 'equivocate,invalid-value,forge,future-round,silent,amnesia | all', defaultText: 'all' },
    { name: 'seed', type: 'int', placeholder: '<s>', description: 'first seed; --seed S --seeds 1 replays one run exactly', defaultText: '1' },
    { name: 'split-brain', type: 'boolean', description: 'negative control: each Byzantine key runs a fork per honest group while the groups are cut apart (with more than f Byzantine the checkers must report disagreement)' },
  ],
  positionals: [],
  details: 'Runs the PRODUCTION consensus driver over the deterministic simulator (virtual time, simulated wire, crashable stores).\nexample: fednode simnet --nodes 7 --seeds 200 --heights 20\nreplay:  the summary prints the exact command for each violating seed\nexit:    0 no violation, 1 a violation was found, 2 bad options',
  async run(ctx) {
    const argv: string[] = [];
    for (const f of INT_FLAGS) {
      const v = flagNumber(ctx.args, f);
      if (v !== undefined) argv.push(`--${f}`, String(v));
    }
    for (const f of LIST_FLAGS) {
      const v = flagString(ctx.args, f);
      if (v !== undefined) argv.push(`--${f}`, v);
    }
    if (flagBool(ctx.args, 'json') === true) argv.push('--json');
    if (flagBool(ctx.args, 'split-brain') === true) argv.push('--split-brain');
    const opts = parseSimnetArgs(argv);
    const summary = await runSimnet(opts, (line) => ctx.err(line + '\n'));
    ctx.result(summary, formatSummaryTable(summary).join('\n') + '\n');
    return summary.safetyViolations + summary.livenessViolations === 0 ? 0 : 1;
  },
};
