// Pure-core consensus benchmark (no network): n in-process cores with real Ed25519 and
// BLAKE3, every broadcast delivered synchronously. Measures the CPU cost of one decided
// height across all n nodes, and pattern throughput with batching (validate before prevote
// plus apply after decide, on every node). Baseline in the same run: the irreducible crypto of
// one height (n proposal/prevote/precommit signatures, ~2n^2 verifications).
// The libp2p end-to-end latency benchmark of issue 5 belongs to the node driver.
import { performance } from 'node:perf_hooks';
import { ed25519 } from '../crypto/ed25519.js';
import { domain } from '../crypto/blake3.js';
import { identityFromSeed, type Identity } from '../crypto/keys.js';
import { createConsensusState, DEFAULT_LIMITS, LAN_TIMEOUTS, makeValidatorSet, step, voteDigest } from '../consensus/core.js';
import { contentHashOf, encodeBatch, type PatternOp } from '../consensus/patterns.js';
import { applyBatch, genesisRegistry, validityFor, validatorSetAt, type Registry } from '../consensus/registry.js';
import type { ConsensusState, Event } from '../consensus/types.js';

interface Row {
  n: number;
  heights: number;
  patternsPerBatch: number;
  msPerHeight: number;
  baselineCryptoMsPerHeight: number;
  ratioToCrypto: number;
  patternsPerSecond: number;
}

function ids(n: number): Identity[] {
  return Array.from({ length: n }, (_, i) => {
    const seed = new Uint8Array(32);
    seed[0] = i + 1;
    seed[1] = 0xbe;
    return identityFromSeed(seed);
  });
}

function runCluster(n: number, heights: number, patternsPerBatch: number): { ms: number; decided: number } {
  const idl = ids(n);
  const regs: Map<number, Registry>[] = idl.map(() => new Map([[0, genesisRegistry({ members: idl.map((id, i) => ({ publicKey: id.publicKey, power: 1, name: `n${i}` })) })]]));
  const states: ConsensusState[] = idl.map((id, i) =>
    createConsensusState({
      cluster: 'bench',
      signer: { publicKey: id.publicKey, sign: (d) => ed25519.sign(id.secretKey, d) },
      verify: (pk, d, s) => ed25519.verify(pk, d, s),
      validateValue: validityFor((h) => regs[i]!.get(h - 1) ?? null),
      timeouts: LAN_TIMEOUTS,
      ...DEFAULT_LIMITS,
    }),
  );
  let decided = 0;
  const t0 = performance.now();
  for (let h = 1; h <= heights; h++) {
    const queue: { to: number; event: Event }[] = [];
    for (let i = 0; i < n; i++) queue.push({ to: i, event: { type: 'start-height', height: h, validators: validatorSetAt(regs[i]!.get(h - 1)!, h) } });
    while (queue.length > 0) {
      const { to, event } = queue.shift()!;
      const res = step(states[to]!, event);
      states[to] = res.state;
      for (const e of res.effects) {
        if (e.type === 'request-value') {
          const ops: PatternOp[] = Array.from({ length: patternsPerBatch }, (_, k) => {
            const content = `pattern ${h}/${k}: summarise {{input}} in one line`;
            return { kind: 'pattern', name: `p-${k}`, content, contentHash: contentHashOf(content), tags: ['bench'], quality: null };
          });
          queue.push({ to, event: { type: 'value-to-propose', height: e.height, round: e.round, value: encodeBatch(ops) } });
        } else if (e.type === 'broadcast') {
          for (let j = 0; j < n; j++) if (j !== to) queue.push({ to: j, event: e.message.type === 'vote' ? { type: 'vote', vote: e.message.vote } : { type: 'proposal', proposal: e.message.proposal } });
        } else if (e.type === 'decide') {
          regs[to]!.set(h, applyBatch(regs[to]!.get(h - 1)!, h, e.value));
          regs[to]!.delete(h - 2); // keep two registries per node
          decided++;
        }
      }
    }
  }
  return { ms: performance.now() - t0, decided };
}

function cryptoBaseline(n: number, heights: number): number {
  const idl = ids(n);
  makeValidatorSet(idl.map((id) => ({ publicKey: id.publicKey, power: 1 })), 1);
  const t0 = performance.now();
  for (let h = 1; h <= heights; h++) {
    for (const type of ['prevote', 'precommit'] as const) {
      const sigs = idl.map((id) => {
        const d = voteDigest('bench', { type, height: h, round: 0, valueId: null });
        return { pk: id.publicKey, d, s: ed25519.sign(id.secretKey, d) };
      });
      for (let j = 0; j < n; j++) for (const x of sigs) if (x.pk !== idl[j]!.publicKey) ed25519.verify(x.pk, x.d, x.s);
    }
  }
  return performance.now() - t0;
}

export async function run(opts: { json: boolean; args: readonly string[] }): Promise<unknown> {
  // The digest domains switch to their fast reusable hasher once ready (before, a slower exact fallback runs).
  await Promise.all(['fednode/v1/vote', 'fednode/v1/proposal'].map((c) => domain(c).ready));
  const heights = Number(opts.args.find((a) => a.startsWith('--heights='))?.slice('--heights='.length) ?? 100);
  const rows: Row[] = [];
  for (const n of [4, 7]) {
    for (const batch of [1, 256]) {
      runCluster(n, 5, batch); // warm-up
      const r = runCluster(n, heights, batch);
      if (r.decided !== n * heights) throw new Error(`bench cluster did not decide every height (${r.decided}/${n * heights})`);
      const base = cryptoBaseline(n, heights);
      rows.push({
        n,
        heights,
        patternsPerBatch: batch,
        msPerHeight: r.ms / heights,
        baselineCryptoMsPerHeight: base / heights,
        ratioToCrypto: r.ms / base,
        patternsPerSecond: (heights * batch) / (r.ms / 1000),
      });
    }
  }
  if (!opts.json) {
    console.log('consensus (pure core, all n nodes in one process, real Ed25519; CPU per decided height)');
    console.log('n  batch  ms/height  crypto-baseline ms  ratio  patterns/s');
    for (const r of rows) {
      console.log(`${String(r.n).padEnd(3)}${String(r.patternsPerBatch).padEnd(7)}${r.msPerHeight.toFixed(2).padEnd(11)}${r.baselineCryptoMsPerHeight.toFixed(2).padEnd(20)}${r.ratioToCrypto.toFixed(2).padEnd(7)}${r.patternsPerSecond.toFixed(0)}`);
    }
  }
  return { suite: 'consensus', mode: 'pure-core-in-process', ed25519: ed25519.name, rows };
}
