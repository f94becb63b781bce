/**
 * LevelDB corruption found while running (node/store/guard.ts): a real LevelDB whose table file
 * has its footer overwritten after it was written. The store still opens (tables are read lazily), the first
 * read that touches the table fails with LevelDB's corruption status, the watchdog reports it
 * once (the node stops on it) and the caller still gets the error: nothing carries on from a
 * partial read.
 */
import { mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { afterAll, describe, expect, it } from 'vitest';
import { guardStore, isLevelCorruption } from '../../../node/store/guard.js';
import { openStore } from '../../../node/store/index.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('store corruption watchdog (real LevelDB)', () => {
  it('a read of a damaged table is reported once and rethrown; reads of intact keys go on', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fednode-guard-'));
    dirs.push(dir);
    // a table file with peer-book keys only (key range !peers!...), compacted out of the log
    const db = new ClassicLevel<string, string>(dir);
    await db.open();
    await db.batch(Array.from({ length: 2000 }, (_, i) => ({ type: 'put' as const, key: `!peers!k${String(i).padStart(5, '0')}`, value: 'x'.repeat(100) })));
    await db.compactRange('!peers!', '!peers"');
    await db.close();
    const tables = (await readdir(dir)).filter((f) => f.endsWith('.ldb'));
    expect(tables.length).toBeGreaterThan(0);
    for (const t of tables) {
      const f = join(dir, t);
      // the table's footer magic number overwritten: LevelDB's "not an sstable (bad magic number)"
      const fh = await open(f, 'r+');
      try {
        await fh.write(Buffer.alloc(8, 0x58), 0, 8, (await stat(f)).size - 8);
      } finally {
        await fh.close();
      }
    }

    const raw = await openStore(dir, { createIfMissing: false }); // meta/version is outside the table's range: opens
    const reports: Array<{ err: unknown; where: string }> = [];
    const store = guardStore(raw, (err, where) => reports.push({ err, where }));
    try {
      await store.section('meta').put('probe', new Uint8Array([1]), { sync: true });
      expect([...(await store.section('meta').get('probe')) ?? []]).toEqual([1]);
      expect(reports).toEqual([]);

      const first = await store.section('peers').get('k00007').then(
        () => null,
        (e: unknown) => e,
      );
      expect(isLevelCorruption(first), `a corruption error: ${String(first)}`).toBe(true);
      const second = await (async () => {
        try {
          for await (const _ of store.section('peers').entries({ limit: 10 })) void _;
          return null;
        } catch (e) {
          return e;
        }
      })();
      expect(isLevelCorruption(second)).toBe(true);
      expect(reports).toHaveLength(1); // reported once, rethrown every time
      expect(reports[0]!.where).toBe('peers/k00007');
    } finally {
      await store.close();
    }
  });
});
