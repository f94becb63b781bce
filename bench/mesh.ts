/**
 * `npm run bench -- mesh [--runs=N] [--nodes=N]`: how long N real nodes in this process (real
 * libp2p on loopback, real LevelDB; test/helpers/runtime-cluster.ts) take to become a full mesh
 * (every node connected to every other, a direct consensus channel to every other validator)
 * when each knows only the previous node (`chain`: the mesh keeper learns the rest from adverts)
 * against the same-run baseline where node k knows all nodes before it (`star`: every pair is
 * dialled from the config), both timed from before the first node starts. Then node 1 restarts
 * on a new port (chain: with no bootstrap list) and the time from its stop to the full mesh
 * again is measured the same way for both. Runs alternate chain / star so
 * machine noise hits both alike; medians and the chain/star ratio are reported.
 */
import type { BenchOptions } from './main.js';
import { startRuntimeCluster } from '../test/helpers/runtime-cluster.js';
import type { RuntimeCluster } from '../test/helpers/runtime-cluster.js';

/** A run that has not formed its mesh in this long is a failure, not a slow sample. */
const MESH_DEADLINE_MS = 60_000;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** ms from t0 (before the nodes were started) until the full mesh. */
async function untilFullMesh(c: RuntimeCluster, n: number, t0: number): Promise<number> {
  for (;;) {
    const ok = c.nodes.every((x) => {
      const s = x.status();
      return s.mesh.connected === n - 1 && s.mesh.missing.length === 0 && s.consensus.wire.withoutChannel.length === 0 && s.consensus.wire.direct === n - 1;
    });
    if (ok) return performance.now() - t0;
    if (performance.now() - t0 > MESH_DEADLINE_MS) throw new Error(`no full mesh within ${MESH_DEADLINE_MS} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function run(opts: BenchOptions): Promise<unknown> {
  const arg = (name: string, dflt: number): number => Number(opts.args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt);
  const runs = arg('runs', 3);
  const n = arg('nodes', 4);
  const samples: Record<'chain' | 'star', { form: number[]; reform: number[] }> = { chain: { form: [], reform: [] }, star: { form: [], reform: [] } };
  for (let r = 0; r < runs; r++) {
    for (const mode of ['chain', 'star'] as const) {
      const t0 = performance.now();
      const c = await startRuntimeCluster(n, { chain: mode === 'chain' });
      try {
        samples[mode].form.push(await untilFullMesh(c, n, t0));
        const t1 = performance.now();
        await c.restart(0);
        samples[mode].reform.push(await untilFullMesh(c, n, t1));
      } finally {
        await c.stop();
      }
    }
  }
  const med = (m: 'chain' | 'star', k: 'form' | 'reform'): number => Math.round(median(samples[m][k]));
  const result = {
    suite: 'mesh',
    nodes: n,
    runs,
    formMs: { chain: med('chain', 'form'), star: med('star', 'form'), ratio: +(median(samples.chain.form) / median(samples.star.form)).toFixed(2) },
    reformAfterRestartMs: { chain: med('chain', 'reform'), star: med('star', 'reform'), ratio: +(median(samples.chain.reform) / median(samples.star.reform)).toFixed(2) },
    samples,
  };
  if (!opts.json) {
    console.log(`mesh: ${n} nodes, ${runs} run(s) each, medians (chain = each node knows only the previous one; star = same-run baseline, node k knows all before it)`);
    console.log(`  full mesh after start          chain ${result.formMs.chain} ms   star ${result.formMs.star} ms   ratio ${result.formMs.ratio}`);
    console.log(`  full mesh after node-1 restart chain ${result.reformAfterRestartMs.chain} ms   star ${result.reformAfterRestartMs.star} ms   ratio ${result.reformAfterRestartMs.ratio}`);
  }
  return result;
}
