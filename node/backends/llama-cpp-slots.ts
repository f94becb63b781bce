/**
 * A counting semaphore over a model's sequences with a bounded FIFO of waiters: `acquire`
 * resolves with a release function once a sequence is free, throws ERR_BACKEND_BUSY when
 * `maxWaiting` are already waiting, and ERR_BACKEND_ABORTED when the signal fires while queued.
 */
import { BackendError } from './types.js';

export class SlotQueue {
  private active = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(
    readonly slots: number,
    private readonly maxWaiting: number,
  ) {}

  get busy(): number {
    return this.active;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted === true) throw new BackendError('ERR_BACKEND_ABORTED', 'request aborted');
    if (this.active < this.slots) {
      this.active++;
      return this.releaser();
    }
    if (this.waiters.length >= this.maxWaiting) throw new BackendError('ERR_BACKEND_BUSY', `all ${this.slots} sequences busy and ${this.waiters.length} requests waiting`, { active: this.active, queued: this.waiters.length });
    await new Promise<void>((resolve, reject) => {
      const wake = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(wake);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new BackendError('ERR_BACKEND_ABORTED', 'request aborted while queued'));
      };
      this.waiters.push(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    // the releasing request handed its slot over: active unchanged
    return this.releaser();
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.shift();
      if (next !== undefined) next();
      else this.active--;
    };
  }
}
