import type { Command } from '../command.js';
import { CONFIG_FLAGS, configFromFlags } from './config-flags.js';

export const joinCommand: Command = {
  name: 'join',
  summary: 'Join a cluster with an invite token from `fednode invite`: creates the data directory with the cluster id, pre-shared key and bootstrap addresses.',
  flags: CONFIG_FLAGS,
  positionals: [{ name: 'token', required: true, description: 'invite token (base64url) printed by `fednode invite` on a member' }],
  async run(ctx) {
    const token = ctx.args.positionals[0] ?? '';
    const { joinDataDir } = await import('../../node/runtime/init.js'); // lazy: keeps other commands' start-up light
    const r = await joinDataDir({ dir: ctx.dataDir, token, config: configFromFlags(ctx.args), nowMs: ctx.now() });
    ctx.result(
      { dataDir: r.paths.root, peerId: r.peerId, cluster: r.cluster, issuer: r.issuer, bootstrap: r.bootstrap },
      `joined cluster ${r.cluster ?? ''} (invited by ${r.issuer})\n  peer id    ${r.peerId}\n  data dir   ${r.paths.root}\n  bootstrap  ${r.bootstrap.join('\n             ')}\nnext: fednode start --data-dir ${r.paths.root}\n`,
    );
    return 0;
  },
};
