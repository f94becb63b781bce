import { readFileSync } from 'node:fs';
import type { Command } from '../command.js';
import { flagNumber } from '../command.js';
import type { CommitReceipt } from '../../node/consensus/api.js';
import type { PatternsJson } from '../../node/runtime/consensus-routes.js';
import { answered, certificateSummary, opFromArgs, PROPOSE_KINDS } from './consensus-common.js';

/** Default wait for the commit (the node's own default); a LAN commit takes milliseconds. */
const WAIT_MS_DEFAULT = 30_000;
/** Extra time the HTTP call gets beyond the wait, so the node answers 504 before the client gives up. */
const HTTP_SLACK_MS = 5_000;

export const proposeCommand: Command = {
  name: 'propose',
  flags: [
    { name: 'name', type: 'string', placeholder: '<name>', description: 'pattern: its name; member.add: the member name' },
    { name: 'power', type: 'int', min: 1, max: 1_000_000, placeholder: '<n>', description: 'member.add: voting power', defaultText: '1' },
    { name: 'weight', type: 'string', repeatable: true, placeholder: '<k=v>', description: 'route.policy: a routing weight (0..1000)' },
    { name: 'battery-floor', type: 'string', placeholder: '<pct>', description: 'route.policy: battery members below this % get no work' },
    { name: 'temp-ceiling', type: 'string', placeholder: '<C>', description: 'route.policy: GPUs hotter than this get no work' },
    { name: 'remove', type: 'boolean', description: 'model.alias: remove the alias' },
    { name: 'content', type: 'string', placeholder: '<text>', description: 'pattern: its content' },
    { name: 'file', type: 'string', placeholder: '<path>', description: 'pattern: read the content from a file' },
    { name: 'tag', type: 'string', repeatable: true, placeholder: '<tag>', description: 'pattern: a tag' },
    { name: 'quality', type: 'string', repeatable: true, placeholder: '<k=v>', description: 'pattern: a quality score (checked against the cluster quality gates)' },
    { name: 'wait', type: 'duration', placeholder: '<duration>', description: 'how long to wait for the commit', defaultText: '30s' },
  ],
  positionals: [
    { name: 'kind', required: true, description: PROPOSE_KINDS.join(' | ') },
    { name: 'args', required: false, rest: true, description: 'member.add/remove <peer>; model.alias <alias> <model>; quality.gates k=v ...' },
  ],
  details: [
    'examples:',
    '  fednode propose member.add 12D3KooW... --name gpu-box-2',
    '  fednode propose member.remove 12D3KooW...',
    '  fednode propose route.policy --weight load=1 --weight latency=0.5 --battery-floor 25 --temp-ceiling 80',
    '  fednode propose model.alias llama llama3.1:8b-instruct      (or: model.alias llama --remove)',
    '  fednode propose quality.gates accuracy=0.8 toxicity=-0.1',
    '  fednode propose pattern --name greet --content "Say hello" --tag demo --quality accuracy=0.9',
    'fields route.policy leaves out keep their current values.',
  ].join('\n'),
  async run(ctx) {
    const readFile = (p: string): string => readFileSync(p, 'utf8');
    const needsPolicy = ctx.args.positionals[0] === 'route.policy';
    // Arguments first, so a usage error is reported (exit 2) even with no node running.
    let op = opFromArgs(ctx.args, { readFile, ...(needsPolicy ? { currentPolicy: { weights: {}, batteryFloorPct: 0, temperatureCeilingC: 0 } } : {}) });
    const client = await ctx.control();
    if (needsPolicy) {
      const currentPolicy = (await answered(() => client.get<PatternsJson>('/consensus/patterns'))).registry.routePolicy;
      op = opFromArgs(ctx.args, { readFile, currentPolicy });
    }
    const waitMs = flagNumber(ctx.args, 'wait') ?? WAIT_MS_DEFAULT;
    const r = await answered(() => client.post<CommitReceipt>('/consensus/propose', { ops: [op], waitMs }, { timeoutMs: waitMs + HTTP_SLACK_MS }));
    ctx.result(
      { op, ...r },
      `committed ${op.kind} at height ${r.height} (round ${r.round})\n` +
        `  value          ${r.valueId}\n` +
        `  certificate    ${certificateSummary(r)}\n` +
        `  signers        ${r.signers.join('\n                 ')}\n` +
        `  registry hash  ${r.registryHash}\n`,
    );
    return 0;
  },
};
