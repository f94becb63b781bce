// The young-generation cap (node/metrics/heap.ts) in real child processes: V8 flags are
// process-wide, so each case gets a fresh Node.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { capYoungGeneration, operatorSetSemiSpace } from '../../../node/metrics/heap.js';

const run = promisify(execFile);
const child = fileURLToPath(new URL('../../helpers/heap-child.ts', import.meta.url));

async function grow(nodeArgs: string[], mode: 'cap' | 'nocap'): Promise<{ newSpaceMiB: number; mode: string | null; switches: number }> {
  const { stdout } = await run(process.execPath, [...nodeArgs, '--import', 'tsx', child, mode], { timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as { newSpaceMiB: number; mode: string | null; switches: number };
}

describe('young-generation cap', () => {
  it('keeps new space within the budget where V8 alone grows it past', async () => {
    const [free, capped] = await Promise.all([grow([], 'nocap'), grow([], 'cap')]);
    // the same allocation pattern without the cap grows new space beyond 8 MiB...
    expect(free.newSpaceMiB).toBeGreaterThan(8);
    // ...and with it stays within 8 MiB, the cap having stopped growth at least once
    expect(capped.mode).toBe('runtime-cap');
    expect(capped.newSpaceMiB).toBeLessThanOrEqual(8);
    expect(capped.switches).toBeGreaterThanOrEqual(1);
  });

  it('steps aside when the operator sized the young generation (--max-semi-space-size)', async () => {
    const r = await grow(['--max-semi-space-size=2'], 'cap');
    expect(r.mode).toBe('operator-flag');
    expect(r.switches).toBe(0);
    expect(r.newSpaceMiB).toBeLessThanOrEqual(4); // two 2 MiB semi-spaces: the operator's flag, untouched
  });

  it('recognises the flag on the command line and in NODE_OPTIONS, and checks the budget', () => {
    expect(operatorSetSemiSpace(['--max-semi-space-size=4'], undefined)).toBe(true);
    expect(operatorSetSemiSpace(['--max_semi_space_size', '4'], undefined)).toBe(true);
    expect(operatorSetSemiSpace([], '--enable-source-maps --max-semi-space-size=16')).toBe(true);
    expect(operatorSetSemiSpace(['--max-old-space-size=512'], '--semi-space-growth-factor=1')).toBe(false);
    expect(() => capYoungGeneration(1)).toThrow(RangeError);
    expect(() => capYoungGeneration(3.5)).toThrow(RangeError);
    const c = capYoungGeneration(8, { execArgv: ['--max-semi-space-size=8'], nodeOptions: undefined });
    expect(c.mode).toBe('operator-flag');
    c.stop();
    // one runtime cap per process: a second call gets the same one; after stop() a new one
    const a = capYoungGeneration(8, { execArgv: [], nodeOptions: undefined });
    expect(capYoungGeneration(8, { execArgv: [], nodeOptions: undefined })).toBe(a);
    a.stop();
    const b = capYoungGeneration(8, { execArgv: [], nodeOptions: undefined });
    expect(b).not.toBe(a);
    b.stop();
  });
});
