import type { Command } from '../command.js';
import { loadIdentity } from '../../crypto/keys.js';
import { loadConfig } from '../../node/config.js';
import { checkInitialised } from '../../node/datadir.js';
import { createJsonLogger } from '../../node/log.js';
import { capYoungGeneration } from '../../node/metrics/heap.js';
import { METRICS_ENV, metricsListenFromEnv } from '../../node/metrics/server.js';

export const startCommand: Command = {
  name: 'start',
  flags: [],
  positionals: [],
  details: 'Readiness line: `fednode ready peer=<id> api=<url|-> control=<url> addrs=<a,b>` (with --json: {"event":"ready",...}).\nMetrics: Prometheus text at the URL in `fednode status --json` (extensions.metrics.url); FEDNODE_METRICS=HOST:PORT fixes the address (default 127.0.0.1, free port), FEDNODE_METRICS=off disables it.\nExit codes: 3 data dir missing/not initialised, 4 locked by another node, 5 corrupt data (see `fednode help exit-codes`).',
  async run(ctx) {
    // Before libp2p loads: keeps V8's new space at 8 MiB instead of 32 (see node/metrics/heap.ts).
    capYoungGeneration();
    const metricsListen = metricsListenFromEnv(ctx.env[METRICS_ENV]);
    const paths = await checkInitialised(ctx.dataDir);
    const config = await loadConfig(paths.config);
    const nodeName = config.name ?? (await loadIdentity(paths.identity)).peerId.slice(-8);
    const write = (line: string): void => ctx.err(line + '\n');
    const logger = createJsonLogger({ node: nodeName, level: config.log.level, write });
    // Signals that arrive while starting are honoured once the node is up.
    let signalled: NodeJS.Signals | null = null;
    let onSignal: (s: NodeJS.Signals) => void = (s) => {
      signalled = s;
    };
    const handler = (s: NodeJS.Signals): void => onSignal(s);
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
    try {
      // loaded here so that other commands start without importing libp2p
      const { startNode } = await import('../../node/runtime/node.js');
      const { metricsExtension } = await import('../../node/metrics/extension.js');
      const node = await startNode({ dataDir: paths.root, logger, extensions: [metricsExtension({ listen: metricsListen })] });
      const addrs = node.addresses();
      if (ctx.json) {
        ctx.out(JSON.stringify({ event: 'ready', peerId: node.peerId, cluster: node.cluster, api: node.apiUrl, control: node.controlUrl, addrs, pid: process.pid }) + '\n');
      } else {
        ctx.out(`fednode ready peer=${node.peerId} api=${node.apiUrl ?? '-'} control=${node.controlUrl} addrs=${addrs.join(',')}\n`);
      }
      let resolve: (code: number) => void = () => undefined;
      const promise = new Promise<number>((r) => {
        resolve = r;
      });
      let count = 0;
      onSignal = (s) => {
        count++;
        if (count > 1) {
          logger.warn('second signal: exiting without finishing shutdown', { signal: s });
          resolve(1);
          return;
        }
        logger.info('signal received, shutting down', { signal: s });
        node.stop().then(
          () => resolve(0),
          (e: unknown) => {
            logger.error('shutdown failed', { err: e });
            resolve(1);
          },
        );
      };
      if (signalled !== null) onSignal(signalled);
      return await promise;
    } finally {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    }
  },
};
