import type { Command } from '../command.js';
import { flagBool } from '../command.js';
import { CONFIG_FLAGS, configFromFlags } from './config-flags.js';

export const initCommand: Command = {
  name: 'init',
  flags: [{ name: 'new-cluster', type: 'boolean', description: 'create a new cluster (id, pre-shared key, genesis member list)' }, ...CONFIG_FLAGS],
  positionals: [],
  details: 'To join an existing cluster instead, run `fednode join <token>` (the token comes from `fednode invite` on a member).\nEvery config field, its default and why: `fednode help config`.',
  async run(ctx) {
    const newCluster = flagBool(ctx.args, 'new-cluster') ?? false;
    const { initDataDir } = await import('../../node/runtime/init.js'); // lazy: keeps other commands' start-up light
    const r = await initDataDir({ dir: ctx.dataDir, newCluster, config: configFromFlags(ctx.args), nowMs: ctx.now() });
    ctx.result(
      { dataDir: r.paths.root, peerId: r.peerId, cluster: r.cluster, config: r.paths.config },
      [
        `initialised ${r.paths.root}`,
        `  peer id   ${r.peerId}`,
        `  cluster   ${r.cluster ?? '(none: run `fednode join <token>` to join one)'}`,
        `  config    ${r.paths.config}`,
        r.cluster !== null ? `next: fednode start --data-dir ${r.paths.root}` : '',
      ]
        .filter((l) => l !== '')
        .join('\n') + '\n',
    );
    return 0;
  },
};
