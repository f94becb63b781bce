/**
 * The store manifest's file format (strict parse, durable write) and its keeper's batching and
 * signer-ceiling rules (node/store/manifest.ts, manifest-keeper.ts). Real files in a temp dir.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createJsonLogger } from '../../../node/log.js';
import { ManifestKeeper } from '../../../node/store/manifest-keeper.js';
import { MANIFEST_VERSION, parseManifest, readManifest, SIGNER_CEILING_BLOCK, writeManifest } from '../../../node/store/manifest.js';
import type { StoreManifest } from '../../../node/store/manifest.js';
import { fenceOf, fenceRecord } from '../../../node/store/repair.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
const tmp = async (): Promise<string> => {
  const d = await mkdtemp(join(tmpdir(), 'fednode-manifest-'));
  dirs.push(d);
  return d;
};
const quiet = createJsonLogger({ node: 't', level: 'error', write: () => undefined });

const base: StoreManifest = {
  v: MANIFEST_VERSION,
  cluster: 'c0ffee',
  node: '12D3KooWtest',
  storeId: '0123456789abcdef0123456789abcdef',
  decided: { height: 7, registryHash: 'ab'.repeat(32) },
  signerHeight: 7,
  signerCeiling: 71,
  writtenMs: 1,
};

describe('store manifest file', () => {
  it('round-trips through the durable write and reads null when absent', async () => {
    const d = await tmp();
    const p = join(d, 'store-manifest.json');
    expect(await readManifest(p)).toBeNull();
    await writeManifest(p, base);
    expect(await readManifest(p)).toEqual(base);
  });

  it.each([
    ['not JSON', '{"v":1,', /not JSON/],
    ['a list', '[]', /not a JSON object/],
    ['another version', JSON.stringify({ ...base, v: 2 }), /version 2/],
    ['an unknown field', JSON.stringify({ ...base, extra: 1 }), /unknown field 'extra'/],
    ['a bad store id', JSON.stringify({ ...base, storeId: 'xyz' }), /storeId/],
    ['a negative height', JSON.stringify({ ...base, decided: { height: -1, registryHash: base.decided.registryHash } }), /decided.height/],
    ['a short hash', JSON.stringify({ ...base, decided: { height: 3, registryHash: 'ab' } }), /registryHash/],
    ['a ceiling below the signer height', JSON.stringify({ ...base, signerCeiling: 3 }), /signerCeiling/],
  ])('refuses %s with ERR_MANIFEST_CORRUPT naming the file', (_what, text, why) => {
    let err: unknown;
    try {
      parseManifest('/x/store-manifest.json', text);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'ERR_MANIFEST_CORRUPT', data: { file: '/x/store-manifest.json', recovery: 'fednode repair --from-peers' } });
    expect((err as Error).message).toMatch(why);
  });

  it('a truncated file on disk is refused, not read as absent', async () => {
    const d = await tmp();
    const p = join(d, 'store-manifest.json');
    await writeManifest(p, base);
    const text = await readFile(p, 'utf8');
    await writeFile(p, text.slice(0, 40));
    await expect(readManifest(p)).rejects.toMatchObject({ code: 'ERR_MANIFEST_CORRUPT' });
  });
});

describe('manifest keeper', () => {
  it('advances the floor in batches, only forward, with the signer height read from disk', async () => {
    const d = await tmp();
    const p = join(d, 'store-manifest.json');
    let onDisk = 7;
    const k = new ManifestKeeper({ path: p, initial: base, signerHeightOnDisk: () => Promise.resolve(onDisk), logger: quiet, now: () => 5, flushMs: 60_000 });
    k.decided(8, 'cd'.repeat(32));
    k.decided(9, 'ef'.repeat(32));
    k.decided(6, '00'.repeat(32)); // behind: ignored
    onDisk = 9;
    expect(await readManifest(p), 'nothing written before the flush').toBeNull();
    await k.flush();
    expect(await readManifest(p)).toMatchObject({ decided: { height: 9, registryHash: 'ef'.repeat(32) }, signerHeight: 9, signerCeiling: 71 });
    expect(k.writes).toBe(1);
    await k.close();
  });

  it('never lets a signature above the ceiling through before the manifest covering it is on disk', async () => {
    const d = await tmp();
    const p = join(d, 'store-manifest.json');
    const k = new ManifestKeeper({ path: p, initial: base, signerHeightOnDisk: () => Promise.resolve(7), logger: quiet, now: () => 5, flushMs: 60_000 });
    await k.signGate(10); // well below the ceiling: no write needed
    expect(await readManifest(p)).toBeNull();
    await k.signGate(72); // above 71: awaited advance
    const m = await readManifest(p);
    expect(m?.signerCeiling).toBe(72 + SIGNER_CEILING_BLOCK);
    await k.close();
  });

  it('reserves the next block in the background past half of the current one', async () => {
    const d = await tmp();
    const p = join(d, 'store-manifest.json');
    const k = new ManifestKeeper({ path: p, initial: base, signerHeightOnDisk: () => Promise.resolve(7), logger: quiet, now: () => 5, flushMs: 60_000 });
    await k.signGate(71 - SIGNER_CEILING_BLOCK / 2 + 1);
    await k.flush(); // waits for the write chain
    expect((await readManifest(p))?.signerCeiling).toBe(71 + SIGNER_CEILING_BLOCK);
    await k.close();
  });
});

describe('signer fence', () => {
  it('is a record one height above the fence with nothing signed, recognised as a fence', () => {
    const r = fenceRecord(40);
    expect(r).toMatchObject({ height: 41, round: 0, step: 0, signedDigest: null, signature: null });
    expect(fenceOf(r)).toBe(40);
    expect(fenceOf({ ...r, step: 2, signedDigest: new Uint8Array(32), signature: new Uint8Array(64) })).toBeNull();
  });
});
