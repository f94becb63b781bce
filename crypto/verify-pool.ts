/**
 * Signature verification spread over worker threads, for batches (catch-up of
 * 1,000 decided heights, a burst of votes). Each worker loads the same Ed25519
 * implementation choice as the main thread (sodium-native, else node:crypto).
 *
 * Bounds: one worker per core (minus none: verification is the whole job while
 * a batch runs); at most MAX_PENDING_BATCHES outstanding batches per worker, and
 * a batch holds at most MAX_BATCH items, so memory in flight is bounded.
 */
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { FednodeError } from '../base/errors.js';

export const MAX_BATCH = 4096;
export const MAX_PENDING_BATCHES = 64;

export interface VerifyItem {
  publicKey: Uint8Array;
  message: Uint8Array;
  signature: Uint8Array;
}

// Worker code is plain CommonJS evaluated from a string so the pool works the
// same from TypeScript sources (tests) and from dist/ (production).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const nodeCrypto = require('node:crypto');
let verify;
try {
  if (workerData.sodiumPath === null) throw new Error('no sodium');
  const sodium = require(workerData.sodiumPath);
  verify = (pk, m, s) => pk.length === 32 && s.length === 64 && sodium.crypto_sign_verify_detached(s, m, pk);
} catch {
  const prefix = Buffer.from('302a300506032b6570032100', 'hex');
  verify = (pk, m, s) => {
    if (pk.length !== 32 || s.length !== 64) return false;
    try { return nodeCrypto.verify(null, m, nodeCrypto.createPublicKey({ key: Buffer.concat([prefix, pk]), format: 'der', type: 'spki' }), s); } catch { return false; }
  };
}
parentPort.on('message', ({ id, items }) => {
  const out = new Uint8Array(items.length);
  for (let i = 0; i < items.length; i++) { const it = items[i]; out[i] = verify(it.publicKey, it.message, it.signature) ? 1 : 0; }
  parentPort.postMessage({ id, out }, [out.buffer]);
});
`;

export class VerifyPoolError extends FednodeError<'ERR_VERIFY_POOL_CLOSED' | 'ERR_VERIFY_POOL_FULL' | 'ERR_VERIFY_WORKER'> {}

interface Pending {
  resolve: (r: Uint8Array) => void;
  reject: (e: unknown) => void;
}

export class VerifyPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly load: number[] = [];
  private nextId = 1;
  private closed = false;
  readonly size: number;

  constructor(size: number = availableParallelism()) {
    this.size = Math.max(1, Math.min(size, 64));
    let sodiumPath: string | null = null;
    try {
      sodiumPath = createRequire(import.meta.url).resolve('sodium-native');
    } catch {
      sodiumPath = null;
    }
    for (let i = 0; i < this.size; i++) {
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { sodiumPath } });
      w.unref();
      w.on('message', (msg: { id: number; out: Uint8Array }) => {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        this.load[i] = (this.load[i] ?? 1) - 1;
        p?.resolve(msg.out);
      });
      w.on('error', (err) => this.failAll(err));
      this.workers.push(w);
      this.load.push(0);
    }
  }

  private failAll(err: unknown): void {
    for (const p of this.pending.values()) p.reject(new VerifyPoolError('ERR_VERIFY_WORKER', 'verification worker failed', {}, { cause: err }));
    this.pending.clear();
  }

  /** Verify one batch on the least-loaded worker; result[i] is 1 when item i verifies. */
  verifyBatch(items: readonly VerifyItem[]): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new VerifyPoolError('ERR_VERIFY_POOL_CLOSED', 'verify pool is closed'));
    if (items.length > MAX_BATCH) return Promise.reject(new VerifyPoolError('ERR_VERIFY_POOL_FULL', `batch of ${items.length} exceeds ${MAX_BATCH}`, { size: items.length }));
    let best = 0;
    for (let i = 1; i < this.workers.length; i++) if ((this.load[i] ?? 0) < (this.load[best] ?? 0)) best = i;
    if ((this.load[best] ?? 0) >= MAX_PENDING_BATCHES) {
      return Promise.reject(new VerifyPoolError('ERR_VERIFY_POOL_FULL', `every worker has ${MAX_PENDING_BATCHES} batches pending`, {}));
    }
    const id = this.nextId++;
    this.load[best] = (this.load[best] ?? 0) + 1;
    return new Promise<Uint8Array>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.workers[best]?.postMessage({ id, items });
    });
  }

  /** Verify any number of items, split into batches over all workers. */
  async verifyAll(items: readonly VerifyItem[], batchSize = 256): Promise<Uint8Array> {
    const out = new Uint8Array(items.length);
    const jobs: Promise<void>[] = [];
    for (let off = 0; off < items.length; off += batchSize) {
      const slice = items.slice(off, off + batchSize);
      const at = off;
      jobs.push(this.verifyBatch(slice).then((r) => out.set(r, at)));
    }
    await Promise.all(jobs);
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.failAll(new VerifyPoolError('ERR_VERIFY_POOL_CLOSED', 'verify pool closed'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
