/** Seeded random CBOR-encodable values shared by the codec tests. */
import { Prng } from '../../../base/prng.js';
/** The project's one seeded PRNG (base/prng.ts) as a float source, so the random values are the same on every run. */
export function prng(seed: number): () => number {
  const p = new Prng(seed);
  return () => p.float();
}

export function randomValue(r: () => number, depth: number): unknown {
  const pick = Math.floor(r() * (depth > 3 ? 7 : 9));
  switch (pick) {
    case 0:
      return (Math.floor(r() * 2 ** Math.floor(r() * 53)) * (r() < 0.3 ? -1 : 1)) || 0; // no -0: see its own test
    case 1: {
      const choices = [2 ** 60, -(2 ** 53), 0.5, -1.5, 1e300, 3.4028234663852886e38, 65504, 5.960464477539063e-8, 0.1, -2.5e-10, 1 / 3, 100000.5];
      return choices[Math.floor(r() * choices.length)];
    }
    case 2:
      return ['', 'a', 'vote', 'ünïcödé ✓', 'x'.repeat(30), 'y'.repeat(300)][Math.floor(r() * 6)];
    case 3:
      return new Uint8Array(Math.floor(r() * 40)).map(() => Math.floor(r() * 256));
    case 4:
      return r() < 0.5;
    case 5:
      return null;
    case 6:
      return Math.floor(r() * 30);
    case 7: {
      const n = Math.floor(r() * 5);
      return Array.from({ length: n }, () => randomValue(r, depth + 1));
    }
    default: {
      const n = Math.floor(r() * 6);
      const o: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) o[['a', 'b', 'aa', 'kind', 'z', 'body', 'ab', 'x'.repeat(25)][Math.floor(r() * 8)]!] = randomValue(r, depth + 1);
      return o;
    }
  }
}
