import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DurableWriteError, writeFileDurable } from '../../../base/durable-write.js';
import { writeFileAtomic } from '../../../node/datadir.js';
import { SignerFile } from '../../../node/consensus/signer-file.js';
import type { SignerRecord } from '../../../consensus/types.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function fresh(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'fednode-durable-'));
  dirs.push(d);
  return d;
}

describe('base/durable-write: one crash semantics', () => {
  it('writes with the mode, replaces the old file, leaves no temp file', async () => {
    const d = await fresh();
    const p = join(d, 'f');
    await writeFileDurable(p, 'one', { mode: 0o640 });
    await writeFileDurable(p, 'two', { mode: 0o600 });
    expect(await readFile(p, 'utf8')).toBe('two');
    expect((await stat(p)).mode & 0o777).toBe(0o600);
    expect(await readdir(d)).toEqual(['f']);
  });

  it('a failed rename keeps the old file and removes the temp file; the error names the step', async () => {
    const d = await fresh();
    const p = join(d, 'target');
    await mkdir(p);
    await writeFile(join(p, 'inside'), 'x'); // a non-empty directory cannot be renamed over
    const err = await writeFileDurable(p, 'new').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DurableWriteError);
    expect(err).toMatchObject({ code: 'ERR_DURABLE_WRITE', data: { path: p, step: 'rename' } });
    expect((await readdir(d)).sort()).toEqual(['target']);
    expect(await readFile(join(p, 'inside'), 'utf8')).toBe('x');
  });

  it('a missing directory is an error at open-temp with its errno', async () => {
    const d = await fresh();
    const err = await writeFileDurable(join(d, 'no', 'such', 'f'), 'x').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_DURABLE_WRITE', data: { step: 'open-temp', errno: 'ENOENT' } });
  });

  it('a failed directory fsync is an error, never swallowed (the rename is not yet durable)', async () => {
    const d = await fresh();
    const p = join(d, 'f');
    const eio = Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
    const err = await writeFileDurable(p, 'x', { testOnlySyncDir: () => Promise.reject(eio) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_DURABLE_WRITE', data: { step: 'fsync-dir', errno: 'EIO' } });
  });

  it('the data directory and the signer file write through it (their failures are DurableWriteErrors)', async () => {
    const d = await fresh();
    await expect(writeFileAtomic(join(d, 'missing', 'config.toml'), 'x')).rejects.toMatchObject({ code: 'ERR_DURABLE_WRITE', data: { step: 'open-temp' } });
    const sf = new SignerFile(join(d, 'state'));
    const record: SignerRecord = { height: 3, round: 1, step: 2, signedDigest: new Uint8Array(32).fill(7), signature: new Uint8Array(64).fill(9), lockedRound: -1, lockedValue: null, validRound: -1, validValue: null };
    await sf.write({ record, own: [] });
    await sf.write({ record: { ...record, round: 2 }, own: [] });
    await sf.close();
    expect((await new SignerFile(join(d, 'state')).load())?.record).toEqual({ ...record, round: 2 });
    expect((await readdir(join(d, 'state'))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
