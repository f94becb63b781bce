// Node 20 lacks Promise.withResolvers (Node 22 has it); libp2p 2.x calls it at run
// time (noise upgrades, peer-store locks). This module must be the FIRST import of
// every entry point and is vitest's setupFile. It has no imports of its own.
interface Resolvers<T> {
  promise: Promise<T>;
  resolve: (value: T | PromiseLike<T>) => void;
  reject: (reason?: unknown) => void;
}
type WithResolvers = <T>() => Resolvers<T>;
const P = Promise as unknown as { withResolvers?: WithResolvers };
if (typeof P.withResolvers !== 'function') {
  P.withResolvers = function withResolvers<T>(): Resolvers<T> {
    let resolve!: (value: T | PromiseLike<T>) => void;
    let reject!: (reason?: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
export {};
