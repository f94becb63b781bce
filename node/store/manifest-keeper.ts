/**
 * Keeps the store manifest (manifest.ts) moving with the running node:
 *   decided(h, hash)  a height is durable in the decided log (the driver's onDecided fires after
 *                     its synced put): the floor may advance to it, batched (MANIFEST_FLUSH_MS).
 *   signGate(h)       the driver is about to make a signer record at height h durable: if h is
 *                     above the ceiling the manifest is advanced first (awaited: the signature
 *                     may not exist before the manifest that covers it); past half of the block
 *                     the next block is reserved in the background.
 * The signer floor written is the height of the signer record ON DISK when the manifest is
 * written (read back, so it is never ahead of what a crash would leave). Writes are serialised
 * (one at a time, each writes the newest state). A failed write is logged and retried at the next
 * flush; a failed ceiling advance fails the signature (the driver treats it as a failed disk write).
 */
import type { Logger } from '../log.js';
import { MANIFEST_FLUSH_MS, SIGNER_CEILING_BLOCK, writeManifest } from './manifest.js';
import type { StoreManifest } from './manifest.js';

export interface ManifestKeeperOptions {
  readonly path: string;
  readonly initial: StoreManifest;
  /** Height of the signer record now on disk (0 when none). */
  readonly signerHeightOnDisk: () => Promise<number>;
  readonly logger: Logger;
  readonly now: () => number;
  readonly flushMs?: number;
}

export class ManifestKeeper {
  private m: StoreManifest;
  private pendingDecided: { height: number; registryHash: string } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();
  private reserving = false;
  private closed = false;
  /** Writes done since start (status and tests). */
  writes = 0;

  constructor(private readonly o: ManifestKeeperOptions) {
    this.m = o.initial;
  }

  get manifest(): StoreManifest {
    return this.m;
  }

  decided(height: number, registryHash: string): void {
    if (height <= this.m.decided.height || (this.pendingDecided !== null && height <= this.pendingDecided.height)) return;
    this.pendingDecided = { height, registryHash };
    this.schedule();
  }

  /** Called by the driver before each signer-record write (OpenConsensusOptions.beforeSignerWrite). */
  async signGate(height: number): Promise<void> {
    if (height > this.m.signerCeiling) {
      await this.write({ ceiling: height + SIGNER_CEILING_BLOCK });
      if (height > this.m.signerCeiling) throw new RangeError(`signer ceiling ${this.m.signerCeiling} not advanced past ${height}`);
      return;
    }
    if (!this.reserving && height > this.m.signerCeiling - SIGNER_CEILING_BLOCK / 2) {
      this.reserving = true;
      this.write({ ceiling: this.m.signerCeiling + SIGNER_CEILING_BLOCK })
        .catch((err: unknown) => this.o.logger.warn('cannot advance the signer ceiling in the store manifest (retried before the next signature above it)', { err }))
        .finally(() => {
          this.reserving = false;
        });
    }
  }

  /** Write now what is pending (stop, and the repair command's end). */
  async flush(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.write({});
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
  }

  private schedule(): void {
    if (this.timer !== null || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.write({}).catch((err: unknown) => this.o.logger.warn('cannot write the store manifest (retried at the next decision)', { err }));
    }, this.o.flushMs ?? MANIFEST_FLUSH_MS);
    this.timer.unref();
  }

  private write(want: { ceiling?: number }): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.closed) return;
      const decided = this.pendingDecided ?? this.m.decided;
      const signerHeight = Math.max(this.m.signerHeight, await this.o.signerHeightOnDisk());
      const signerCeiling = Math.max(this.m.signerCeiling, want.ceiling ?? 0, signerHeight);
      const next: StoreManifest = { ...this.m, decided, signerHeight, signerCeiling, writtenMs: Math.max(0, Math.floor(this.o.now())) };
      if (next.decided.height === this.m.decided.height && next.signerHeight === this.m.signerHeight && next.signerCeiling === this.m.signerCeiling && this.writes > 0) return;
      await writeManifest(this.o.path, next);
      this.m = next;
      if (this.pendingDecided !== null && this.pendingDecided.height <= decided.height) this.pendingDecided = null;
      this.writes++;
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }
}
