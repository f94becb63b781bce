/**
 * Optional append-only audit of every signature this node lets out: one JSON line per signed
 * proposal or vote, `{height, round, type, valueId}`, appended and fsynced BEFORE the message
 * leaves the node. A restart re-broadcasting a message signed before the crash appends its line
 * again (an identical line is not a conflict). The crash tests read it to prove that no two
 * conflicting signatures (same height, round and type, different value) were ever produced.
 */
import { constants as fsConstants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, rename, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * 64 MiB (~500,000 lines of ~130 bytes: weeks of busy voting). Past it the file is rotated
 * to `<path>.1` (one old file kept), so the audit can never fill the disk.
 */
export const AUDIT_LOG_MAX_BYTES = 64 * 1024 * 1024;

export interface AuditLine {
  readonly height: number;
  readonly round: number;
  readonly type: 'proposal' | 'prevote' | 'precommit';
  readonly valueId: string | null;
}

export class AuditLog {
  private fh: FileHandle | null = null;
  private size = 0;

  constructor(
    readonly path: string,
    private readonly maxBytes: number = AUDIT_LOG_MAX_BYTES,
  ) {}

  async open(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    this.fh = await open(this.path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_APPEND, 0o600);
    this.size = (await stat(this.path)).size;
  }

  async append(lines: readonly AuditLine[]): Promise<void> {
    if (lines.length === 0) return;
    if (this.fh === null) await this.open();
    const text = lines.map((l) => JSON.stringify({ height: l.height, round: l.round, type: l.type, valueId: l.valueId }) + '\n').join('');
    if (this.size + text.length > this.maxBytes) await this.rotate();
    const fh = this.fh!;
    await fh.write(text);
    await fh.sync();
    this.size += Buffer.byteLength(text);
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    if (fh !== null) await fh.close();
  }

  private async rotate(): Promise<void> {
    await this.close();
    await rename(this.path, `${this.path}.1`);
    await this.open();
  }
}
