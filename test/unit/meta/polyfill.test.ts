import { describe, expect, it, vi } from 'vitest';

// A query string makes a fresh module instance, so the polyfill runs again.
const polyfillPath: string = '../../../node/polyfill.js';

describe('Promise.withResolvers polyfill (libp2p 2.x needs it on Node 20)', () => {
  it('installs a working withResolvers when the runtime lacks one, and keeps a native one', async () => {
    const P = Promise as unknown as { withResolvers?: unknown };
    const original = P.withResolvers;
    try {
      delete P.withResolvers;
      vi.resetModules();
      await import(`${polyfillPath}?fresh=1`);
      const make = (Promise as unknown as { withResolvers: <T>() => { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } }).withResolvers;
      expect(typeof make).toBe('function');
      const a = make<number>();
      a.resolve(42);
      await expect(a.promise).resolves.toBe(42);
      const b = make<number>();
      b.reject(new RangeError('no'));
      await expect(b.promise).rejects.toThrow('no');
      // a second load does not replace an existing implementation
      const installed = P.withResolvers;
      await import(`${polyfillPath}?fresh=2`);
      expect(P.withResolvers).toBe(installed);
    } finally {
      P.withResolvers = original;
    }
  });
});
