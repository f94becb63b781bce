// The architecture's hard rule (consensus/ and the routing policy are pure) is
// enforced by lint; this test proves the rules fire on each forbidden thing and
// that the project's config applies them to those folders.
import { describe, expect, it } from 'vitest';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { FUNCTION_SIZE_PENDING, impureGlobals, impureModules, impureSyntax, sizeRules } from '../../../eslint.purity.js';

const purity = new ESLint({
  overrideConfigFile: true,
  overrideConfig: [
    {
      files: ['**/*.ts'],
      languageOptions: { parser: tseslint.parser },
      rules: {
        'no-restricted-imports': ['error', { patterns: impureModules }],
        'no-restricted-globals': ['error', ...impureGlobals],
        'no-restricted-syntax': ['error', ...impureSyntax],
      },
    },
  ],
});

async function errorsOf(code: string): Promise<string[]> {
  const [res] = await purity.lintText(code, { filePath: 'consensus/probe.ts' });
  return (res?.messages ?? []).map((m) => `${m.ruleId ?? 'parse'}: ${m.message}`);
}

describe('lint keeps the core pure', () => {
  const forbidden: [string, string][] = [
    ['Date.now()', 'const t = Date.now();'],
    ['new Date()', 'const d = new Date();'],
    ['Math.random()', 'const r = Math.random();'],
    ['crypto.getRandomValues', 'crypto.getRandomValues(new Uint8Array(4));'],
    ['setTimeout', 'setTimeout(() => 1, 5);'],
    ['setInterval', 'setInterval(() => 1, 5);'],
    ['performance.now', 'const p = performance.now();'],
    ['process', 'const e = process.env;'],
    ['fetch', 'void fetch("http://x");'],
    ['node:fs', "import { readFileSync } from 'node:fs'; readFileSync('x');"],
    ['net', "import net from 'net'; net.connect(1);"],
    ['libp2p', "import { createLibp2p } from 'libp2p'; void createLibp2p;"],
    ['@libp2p/tcp', "import { tcp } from '@libp2p/tcp'; void tcp;"],
    ['classic-level', "import { ClassicLevel } from 'classic-level'; void ClassicLevel;"],
    ['node/ runtime', "import { x } from '../node/runtime/node.js'; void x;"],
  ];
  for (const [what, code] of forbidden) {
    it(`rejects ${what}`, async () => {
      const errs = await errorsOf(code);
      expect(errs.length, errs.join('\n')).toBeGreaterThan(0);
      expect(errs.some((e) => e.startsWith('no-restricted'))).toBe(true);
    });
  }

  it('accepts pure code that imports crypto/', async () => {
    expect(await errorsOf("import { blake3 } from '../crypto/blake3.js';\nexport const f = (now: number, x: Uint8Array): number => now + blake3(x).length;")).toEqual([]);
  });

  it('the project config applies the purity rules to consensus/ and routing/, not to node/p2p/', async () => {
    const project = new ESLint();
    for (const file of ['consensus/core.ts', 'routing/policy.ts']) {
      const cfg = (await project.calculateConfigForFile(file)) as { rules: Record<string, unknown> };
      expect(cfg.rules['no-restricted-imports'], file).toBeDefined();
      expect(JSON.stringify(cfg.rules['no-restricted-syntax']), file).toContain('Math');
    }
    const p2p = (await project.calculateConfigForFile('node/p2p/host.ts')) as { rules: Record<string, unknown> };
    // node/ has the layer rule (no cli/, simnet/ imports) but not the purity rules: I/O is its job
    expect(JSON.stringify(p2p.rules['no-restricted-imports'])).not.toContain('node:*');
    expect(p2p.rules['no-restricted-globals']).toBeUndefined();
  });
});

describe('lint bounds sizes', () => {
  const sizes = new ESLint({ overrideConfigFile: true, overrideConfig: [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } }, ...sizeRules] as never });
  const rulesOf = async (code: string, filePath: string): Promise<string[]> => ((await sizes.lintText(code, { filePath }))[0]?.messages ?? []).map((m) => m.ruleId ?? 'parse');
  const fn = (lines: number): string => `export function f(): number {\n${Array.from({ length: lines }, (_, i) => `  const v${i} = ${i};`).join('\n')}\n  return 0;\n}\n`;

  it('a source file over 600 lines fails in every source folder', async () => {
    const long = Array.from({ length: 601 }, (_, i) => `export const c${i} = ${i};`).join('\n') + '\n';
    for (const dir of ['base', 'crypto', 'consensus', 'routing', 'node', 'cli', 'simnet']) expect(await rulesOf(long, `${dir}/probe.ts`), dir).toContain('max-lines');
    expect(await rulesOf(long, 'test/unit/probe.test.ts')).not.toContain('max-lines');
  });

  it('a function over 100 lines fails in consensus/, node/ and simnet/; 100 lines pass', async () => {
    for (const dir of ['consensus', 'node/runtime', 'simnet']) {
      expect(await rulesOf(fn(105), `${dir}/probe.ts`), dir).toContain('max-lines-per-function');
      expect(await rulesOf(fn(90), `${dir}/probe.ts`), dir).not.toContain('max-lines-per-function');
    }
  });

  it('the project config applies the size rules; no file is exempt from the function bound', async () => {
    const project = new ESLint();
    const cfg = (await project.calculateConfigForFile('node/runtime/member-sync.ts')) as { rules: Record<string, unknown> };
    expect(JSON.stringify(cfg.rules['max-lines-per-function'])).toContain('100');
    expect(JSON.stringify(cfg.rules['max-lines'])).toContain('600');
    expect(FUNCTION_SIZE_PENDING).toEqual([]); // every factory is split: no file is exempt
    for (const f of ['node/p2p/host.ts', 'node/runtime/node.ts', 'node/runtime/admission.ts', 'node/forward/server.ts']) {
      const c = (await project.calculateConfigForFile(f)) as { rules: Record<string, unknown> };
      expect(JSON.stringify(c.rules['max-lines-per-function']), f).toContain('100');
    }
  });
});
