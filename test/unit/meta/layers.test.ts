// The layer table (docs/ARCHITECTURE.md "Layout") is enforced by lint: every forbidden edge
// (a layer importing one above it) fails, every allowed edge passes, and the project's
// config applies the row of each folder.
import { describe, expect, it } from 'vitest';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { layerPatterns, layers } from '../../../eslint.purity.js';

const linter = new ESLint({
  overrideConfigFile: true,
  overrideConfig: layers.map((l) => ({ files: l.files, languageOptions: { parser: tseslint.parser }, rules: { 'no-restricted-imports': ['error', { patterns: layerPatterns(l) }] } })),
});

/** Relative import of `target` (a folder path) from a file one level under `from`. */
function importFrom(from: string, target: string): { code: string; filePath: string } {
  const depth = from.split('/').length;
  return { code: `import { x } from '${'../'.repeat(depth)}${target}/mod.js';\nvoid x;\n`, filePath: `${from}/probe.ts` };
}

async function errorsOf(from: string, target: string): Promise<string[]> {
  const { code, filePath } = importFrom(from, target);
  const [res] = await linter.lintText(code, { filePath });
  return (res?.messages ?? []).map((m) => `${m.ruleId ?? 'parse'}: ${m.message}`);
}

// [importing folder, imported folder] for every edge the table forbids ...
const forbidden: [string, string][] = [
  ...['crypto', 'consensus', 'routing', 'node', 'cli', 'simnet'].map((t): [string, string] => ['base', t]),
  ...['consensus', 'routing', 'node', 'cli', 'simnet'].map((t): [string, string] => ['crypto', t]),
  ...['node', 'cli', 'simnet', 'test'].map((t): [string, string] => ['consensus', t]),
  ...['node', 'cli', 'simnet'].map((t): [string, string] => ['routing', t]),
  ['node', 'cli'],
  ['node', 'simnet'],
  ['node/consensus', 'simnet'],
  ['simnet', 'cli'],
  ['simnet', 'node/p2p'],
  ['simnet', 'node/store'],
  ['simnet', 'node/runtime'],
  ['cli', 'test'],
];
// ... and the edges it allows (downward).
const allowed: [string, string][] = [
  ['crypto', 'base'],
  ['consensus', 'base'],
  ['consensus', 'crypto'],
  ['routing', 'consensus'],
  ['node', 'consensus'],
  ['node/consensus', 'routing'],
  ['simnet', 'node/consensus'],
  ['simnet', 'consensus'],
  ['cli', 'node/runtime'],
  ['cli', 'simnet'],
];

describe('lint enforces the layer table', () => {
  for (const [from, to] of forbidden) {
    it(`${from}/ may not import ${to}/`, async () => {
      const errs = await errorsOf(from, to);
      expect(errs.some((e) => e.startsWith('no-restricted-imports')), errs.join('\n') || 'no error').toBe(true);
    });
  }
  for (const [from, to] of allowed) {
    it(`${from}/ may import ${to}/`, async () => {
      expect(await errorsOf(from, to)).toEqual([]);
    });
  }

  it('simnet/ may not reach real I/O directly', async () => {
    for (const mod of ['node:fs', 'node:net', 'libp2p', 'classic-level']) {
      const [res] = await linter.lintText(`import * as m from '${mod}';\nvoid m;\n`, { filePath: 'simnet/probe.ts' });
      expect(res?.messages.map((m) => m.ruleId), mod).toContain('no-restricted-imports');
    }
  });

  it('the project config applies each folder its row', async () => {
    const project = new ESLint();
    for (const [file, forbids] of [
      ['base/durable-write.ts', '**/crypto/**'],
      ['crypto/keys.ts', '**/consensus/**'],
      ['consensus/core.ts', '**/node/**'],
      ['routing/policy.ts', '**/simnet/**'],
      ['node/consensus/driver.ts', '**/simnet/**'],
      ['simnet/driver-world.ts', '**/node/p2p/**'],
      ['cli/main.ts', '**/test/**'],
    ] as const) {
      const cfg = (await project.calculateConfigForFile(file)) as { rules: Record<string, unknown> };
      expect(JSON.stringify(cfg.rules['no-restricted-imports']), file).toContain(forbids);
    }
  });
});
