/**
 * `npm run bench -- crypto [--json]`: the crypto pipeline on one core, with
 * baselines measured in the same run, and verification over all cores.
 */
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { createBLAKE3 } from 'hash-wasm';
import { decode as cborgDecode, encode as cborgEncode, rfc8949EncodeOptions } from 'cborg';
import { decodeCanonical, encodeCanonical } from '../crypto/cbor.js';
import { blake3 as nobleBlake3 } from '@noble/hashes/blake3.js';
import { blake3, blake3LargeImplementation, domain } from '../crypto/blake3.js';
import { ed25519, nobleEd25519, nodeEd25519 } from '../crypto/ed25519.js';
import type { Ed25519 } from '../crypto/ed25519.js';
import { createEnvelope, decodeEnvelope, openEnvelope } from '../crypto/envelope.js';
import { identityFromSeed } from '../crypto/keys.js';
import { VerifiedCache } from '../crypto/verify-cache.js';
import { VerifyPool } from '../crypto/verify-pool.js';
import type { BenchOptions } from './main.js';

/** CPU time of this process so far, ms (user + system). */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * Run `fn` in rounds of `batch` until `ms` of this process's CPU time elapse;
 * returns calls per CPU-second. CPU time, not wall time: on the shared machine
 * wall time counts whatever else runs (other agents); the ratios compare two
 * loops measured the same way.
 */
function rate(fn: (i: number) => void, ms: number, batch = 64): number {
  for (let i = 0; i < batch * 4; i++) fn(i); // warm-up (JIT)
  let n = 0;
  const t0 = cpuMs();
  let t = 0;
  do {
    for (let i = 0; i < batch; i++) fn(n + i);
    n += batch;
    t = cpuMs() - t0;
  } while (t < ms);
  return n / (t / 1000);
}

/** Best of `reps` runs: the machine is shared, the best run is the least disturbed. */
function best(fn: (i: number) => void, ms: number, reps = 3, batch = 64): number {
  let b = 0;
  for (let r = 0; r < reps; r++) b = Math.max(b, rate(fn, ms, batch));
  return b;
}

/** Interleaved best-of: A and B alternate, so a load swing on the shared
 * machine hits both; the ratio of the two bests is what the targets compare. */
function pair(a: (i: number) => void, b: (i: number) => void, ms: number, reps = 5): [number, number] {
  let ba = 0;
  let bb = 0;
  for (let r = 0; r < reps; r++) {
    ba = Math.max(ba, rate(a, ms / 2));
    bb = Math.max(bb, rate(b, ms / 2));
  }
  return [ba, bb];
}

/** An advert body of the size a GPU node publishes (two GPUs, three models, addresses). */
function advertLikeBody(): Record<string, unknown> {
  const gpu = (index: number): Record<string, unknown> => ({ index, name: 'NVIDIA GeForce RTX 4090', memoryTotalMiB: 24564, memoryUsedMiB: 1203, utilizationPct: 3, temperatureC: 41, powerDrawW: 27.5, powerLimitW: 450 });
  return {
    models: ['llama3.1:8b', 'qwen2.5-coder:14b', 'nomic-embed-text:latest'], inFlight: 0, queued: 0, capacity: 4, gpus: [gpu(0), gpu(1)],
    cpuLoad: 0.07, memUsedBytes: 8_123_456_789, memTotalBytes: 68_719_476_736, power: { source: 'ac', batteryPct: null, charging: null },
    cpuPackageW: 18.25, profile: 'balanced', profilePinned: false, apiUrl: 'http://192.168.1.20:8080', tokensPerS: null, joulesPerToken: 0.42,
    addrs: ['/ip4/192.168.1.20/tcp/4001', '/ip6/fd00::20/tcp/4001'],
  };
}

/** fednode's codec against cborg (RFC 8949 deterministic options, strict decode) on the same value, interleaved. */
function codecVsCborg(name: string, value: unknown, ms: number): { value: string; bytes: number; encode: [number, number]; decode: [number, number] } {
  const bytes = encodeCanonical(value);
  const theirs = cborgEncode(value, rfc8949EncodeOptions);
  if (Buffer.compare(Buffer.from(bytes), Buffer.from(theirs)) !== 0) throw new RangeError(`codecs disagree on the ${name} value`);
  const strict = { strict: true, rejectDuplicateMapKeys: true };
  return {
    value: name,
    bytes: bytes.byteLength,
    encode: pair(() => encodeCanonical(value), () => cborgEncode(value, rfc8949EncodeOptions), ms),
    decode: pair(() => decodeCanonical(bytes), () => cborgDecode(bytes, strict) as unknown, ms),
  };
}

export async function run(opts: BenchOptions): Promise<unknown> {
  const quick = opts.args.includes('--quick');
  const ms = quick ? 150 : 700;
  const id = identityFromSeed(new Uint8Array(32).fill(3));
  const digest = new Uint8Array(32).fill(7);
  const fields = { kind: 'vote', cluster: 'lab-1', seq: 1, time: 1_763_000_000_000, body: { height: 1234, round: 0, type: 'prevote', value: new Uint8Array(32).fill(9) } };
  await domain('fednode/v1/vote').ready;

  const raw = (impl: Ed25519): { sign: number; verify: number } => {
    const sig = impl.sign(id.secretKey, digest);
    return {
      sign: best(() => impl.sign(id.secretKey, digest), ms),
      verify: best(() => impl.verify(id.publicKey, digest, sig), ms),
    };
  };
  const chosen = raw(ed25519);
  const nodeRaw = ed25519.name === 'node:crypto' ? chosen : raw(nodeEd25519);
  const nobleRaw = { sign: best(() => nobleEd25519.sign(id.secretKey, digest), ms, 1, 8), verify: best(() => nobleEd25519.verify(id.publicKey, digest, nobleEd25519.sign(id.secretKey, digest)), ms, 1, 4) };

  // BLAKE3
  const small = new Uint8Array(64).fill(1);
  const big = new Uint8Array(1 << 20).fill(2);
  const b3small = best(() => blake3(small), ms);
  const b3big = best(() => blake3(big), ms, 3, 2) * big.byteLength;
  const hw = await createBLAKE3(256);
  const hashWasmBig = best(() => { hw.init(); hw.update(big); hw.digest('binary'); }, ms, 2, 2) * big.byteLength;
  let blake3WasmBig: number | null = null;
  try {
    // blake3-wasm 3.0 (devDependency, baseline only): its load() hooks process-wide
    // handlers, so it is loaded only here, in the benchmark process.
    const b3w = createRequire(import.meta.url)('blake3-wasm') as { load(): Promise<void>; hash(x: Uint8Array): Uint8Array };
    await b3w.load();
    blake3WasmBig = best(() => b3w.hash(big), ms, 2, 2) * big.byteLength;
  } catch {
    blake3WasmBig = null;
  }
  const nobleBig = best(() => nobleBlake3(big), ms, 1, 1) * big.byteLength;

  // envelopes
  // Signing is constant-time in the 32-byte message (libsodium hashes it with
  // SHA-512 twice), so the sign baseline may sign one fixed digest: the
  // envelope signs a 32-byte digest too.
  const [rawSignPaired, create] = pair(() => ed25519.sign(id.secretKey, digest), () => createEnvelope(id, fields), ms);
  // A stricter baseline: the primitive signing into a reused off-heap buffer, as createEnvelope
  // now signs (no 64-byte result per call, nothing for V8 to move off its heap). Reported beside
  // the target's baseline so the gap to the bare native call is visible too.
  const sigOut = new Uint8Array(new ArrayBuffer(64));
  const [rawSignIntoPaired, createAgain] = pair(() => ed25519.signInto(sigOut, id.secretKey, digest), () => createEnvelope(id, fields), ms);
  // cold verify: a distinct envelope each call (no cache), built beforehand
  const pregen = Array.from({ length: 4096 }, (_, i) => createEnvelope(id, { ...fields, seq: i }));
  const openOpts = { kinds: ['vote'], cluster: 'lab-1' };
  // The raw baseline verifies the same (key, digest, signature) triples the
  // envelopes carry, in the same order: Ed25519 verification is variable-time
  // (the double-scalar multiplication depends on the digest and S), so one fixed
  // signature is one draw from a spread of about +-5 % measured here, and a
  // hot-cache one at that; the envelope loop averages over 4096 of them.
  const triples = pregen.map((w) => {
    const d = decodeEnvelope(w, openOpts);
    if (!d.ok) throw new RangeError('bench envelope did not decode');
    return { publicKey: d.envelope.signer, digest: d.digest, signature: d.signature };
  });
  const [rawVerifyPaired, verifyCold] = pair(
    (i) => {
      const t = triples[i % triples.length]!;
      if (!ed25519.verify(t.publicKey, t.digest, t.signature)) throw new RangeError('bench signature did not verify');
    },
    (i) => {
      const r = openEnvelope(pregen[i % pregen.length]!, openOpts);
      if (!r.ok) throw new RangeError('bench envelope did not verify');
    },
    ms,
  );
  const cache = new VerifiedCache(8192);
  const wire = pregen[0]!;
  const verifyCached = best(() => openEnvelope(wire, { ...openOpts, cache }), ms);

  // codec vs cborg: the signed map of a vote envelope, and an advert body
  const voteMap = { v: 1, k: fields.kind, c: fields.cluster, s: id.publicKey, q: fields.seq, t: fields.time, b: fields.body };
  const codecs = [codecVsCborg('vote envelope map', voteMap, ms), codecVsCborg('advert body', advertLikeBody(), ms)];

  // aggregate (wall time: several workers): decode on this thread, signatures on one worker per core
  const cores = availableParallelism();
  const pool = new VerifyPool(cores);
  const many = Array.from({ length: quick ? 4096 : 16384 }, (_, i) => pregen[i % pregen.length]!);
  const runAggregate = async (): Promise<number> => {
    const t0 = performance.now();
    const items = [];
    for (const w of many) {
      const d = decodeEnvelope(w, openOpts);
      if (d.ok) items.push({ publicKey: d.envelope.signer, message: d.digest, signature: d.signature });
    }
    const out = await pool.verifyAll(items, 512);
    if (out.some((x) => x !== 1)) throw new RangeError('aggregate verify failed');
    return many.length / ((performance.now() - t0) / 1000);
  };
  await runAggregate();
  let aggregate = 0;
  for (let r = 0; r < 3; r++) aggregate = Math.max(aggregate, await runAggregate());
  await pool.close();

  const result = {
    suite: 'crypto',
    node: process.version,
    ed25519: ed25519.name,
    blake3Large: blake3LargeImplementation,
    cores,
    perSecondOneCore: {
      rawSign: Math.round(chosen.sign),
      rawVerify: Math.round(chosen.verify),
      nodeCryptoSign: Math.round(nodeRaw.sign),
      nodeCryptoVerify: Math.round(nodeRaw.verify),
      nobleSign: Math.round(nobleRaw.sign),
      nobleVerify: Math.round(nobleRaw.verify),
      blake3_64B: Math.round(b3small),
      envelopeCreate: Math.round(create),
      envelopeVerifyCold: Math.round(verifyCold),
      envelopeVerifyCached: Math.round(verifyCached),
    },
    blake3_1MiB_GBps: { chosen: +(b3big / 1e9).toFixed(2), hashWasm: +(hashWasmBig / 1e9).toFixed(2), blake3Wasm: blake3WasmBig === null ? null : +(blake3WasmBig / 1e9).toFixed(2), noble: +(nobleBig / 1e9).toFixed(3) },
    aggregateVerifyPerSec: Math.round(aggregate),
    codecVsCborg: codecs.map((c) => ({
      value: c.value,
      bytes: c.bytes,
      encodePerSec: { fednode: Math.round(c.encode[0]), cborg: Math.round(c.encode[1]), ratio: +(c.encode[0] / c.encode[1]).toFixed(2) },
      decodePerSec: { fednode: Math.round(c.decode[0]), cborg: Math.round(c.decode[1]), ratio: +(c.decode[0] / c.decode[1]).toFixed(2) },
    })),
    ratios: {
      createVsRawSign: +(create / rawSignPaired).toFixed(3),
      createVsRawSignInto: +(createAgain / rawSignIntoPaired).toFixed(3),
      verifyVsRawVerify: +(verifyCold / rawVerifyPaired).toFixed(3),
      rawSignVsNodeCrypto: +(chosen.sign / nodeRaw.sign).toFixed(2),
      rawVerifyVsNodeCrypto: +(chosen.verify / nodeRaw.verify).toFixed(2),
      rawVerifyVsNoble: +(chosen.verify / nobleRaw.verify).toFixed(1),
      aggregateVsOneCore: +(aggregate / verifyCold).toFixed(2),
    },
    targets: {
      envelopeCreate47k: create >= 47_000,
      envelopeVerify17k: verifyCold >= 17_000,
      aggregate28k: aggregate >= 28_000,
      createRatio0_9: create / rawSignPaired >= 0.9,
      verifyRatio0_9: verifyCold / rawVerifyPaired >= 0.9,
      blake3_1_5GBps: b3big / 1e9 >= 1.5,
    },
  };
  if (!opts.json) {
    const p = result.perSecondOneCore;
    const rows: [string, string][] = [
      [`Ed25519 sign (${ed25519.name})`, `${p.rawSign}/s`],
      [`Ed25519 verify (${ed25519.name})`, `${p.rawVerify}/s`],
      ['Ed25519 sign (node:crypto, baseline)', `${p.nodeCryptoSign}/s`],
      ['Ed25519 verify (node:crypto, baseline)', `${p.nodeCryptoVerify}/s`],
      ['Ed25519 sign (@noble/curves, baseline)', `${p.nobleSign}/s`],
      ['Ed25519 verify (@noble/curves, baseline)', `${p.nobleVerify}/s`],
      ['BLAKE3 64 B', `${p.blake3_64B}/s`],
      [`BLAKE3 1 MiB (${result.blake3Large})`, `${result.blake3_1MiB_GBps.chosen} GB/s`],
      ['BLAKE3 1 MiB (hash-wasm, baseline)', `${result.blake3_1MiB_GBps.hashWasm} GB/s`],
      ['BLAKE3 1 MiB (blake3-wasm 3.0, baseline)', `${result.blake3_1MiB_GBps.blake3Wasm ?? 'n/a'} GB/s`],
      ['envelope create', `${p.envelopeCreate}/s  (${result.ratios.createVsRawSign}x raw sign; ${result.ratios.createVsRawSignInto}x raw sign into a reused buffer)`],
      ['envelope verify, cold', `${p.envelopeVerifyCold}/s  (${result.ratios.verifyVsRawVerify}x raw verify)`],
      ['envelope verify, cached', `${p.envelopeVerifyCached}/s`],
      [`aggregate verify (${cores} cores)`, `${result.aggregateVerifyPerSec}/s  (${result.ratios.aggregateVsOneCore}x one core)`],
    ];
    for (const c of result.codecVsCborg) {
      rows.push([`CBOR encode ${c.value} (${c.bytes} B)`, `${c.encodePerSec.fednode}/s vs cborg ${c.encodePerSec.cborg}/s  (${c.encodePerSec.ratio}x)`]);
      rows.push([`CBOR decode ${c.value} (${c.bytes} B)`, `${c.decodePerSec.fednode}/s vs cborg ${c.decodePerSec.cborg}/s  (${c.decodePerSec.ratio}x)`]);
    }
    console.log(`crypto benchmark — Node ${process.version}, per CPU-second of one thread unless noted`);
    for (const [k, v] of rows) console.log(`  ${k.padEnd(50)} ${v}`);
    console.log('targets:', Object.entries(result.targets).map(([k, v]) => `${k}=${v ? 'met' : 'MISSED'}`).join(' '));
  }
  return result;
}
