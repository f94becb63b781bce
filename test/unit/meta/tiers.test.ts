// Every test file belongs to exactly one tier folder (vitest.config.ts): a file anywhere
// else matches no project's include and would never run, silently.
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TIERS } from '../../../vitest.config.js';

const testRoot = fileURLToPath(new URL('../../', import.meta.url));

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'fixtures' && e.name !== 'node_modules') out.push(...testFiles(p));
    } else if (e.name.endsWith('.test.ts')) out.push(relative(testRoot, p));
  }
  return out;
}

describe('test tiers', () => {
  it('every *.test.ts under test/ lies in a tier folder (unit, integration, e2e, sim)', () => {
    const files = testFiles(testRoot);
    expect(files.length).toBeGreaterThan(50);
    const stray = files.filter((f) => !TIERS.some((t) => f.startsWith(`${t}/`)));
    expect(stray, `move these into test/<tier>/<topic>/: ${stray.join(', ')}`).toEqual([]);
  });
});
