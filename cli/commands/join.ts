import type { Command } from '../command.js';
import { CONFIG_FLAGS, configFromFlags } from './config-flags.js';

export const joinCommand: Command = {
  name: 'join',
  flags: CONFIG_FLAGS,
  positionals: [{ name: 'token', required: true, description: 'invite token (base64url) printed by `fednode invite` on a member' }],
  async run(ctx) {
    const token = ctx.args.positionals[0] ?? '';
    const { joinDataDir } = await import('../../node/runtime/init.js'); // lazy: keeps other commands' start-up light
    const r = await joinDataDir({ dir: ctx.dataDir, token, config: configFromFlags(ctx.args), nowMs: ctx.now() });
    ctx.result(
      { dataDir: r.paths.root, peerId: r.peerId, cluster: r.cluster, issuer: r.issuer, bootstrap: r.bootstrap },
      `joined cluster ${r.cluster ?? ''} (invited by ${r.issuer})\n  peer id    ${r.peerId}\n  data dir   ${r.paths.root}\n  bootstrap  ${r.bootstrap.join('\n             ')}\nnext: fednode start --data-dir ${r.paths.root}\n  once started, a member proposes this node's member.add (or, in approve mode, an operator runs \`fednode approve ${r.peerId}\` on a member);\n  \`fednode status\` then shows "admitted at height H"\n`,
    );
    return 0;
  },
};
