/**
 * The one durable write of the project, with one crash semantics: write a temp file in the
 * same directory (exclusive, the final mode), fsync it, rename it over the target, fsync the
 * directory. A crash at any point leaves either the old file or the new one, never a mix; the
 * directory fsync makes the rename itself durable, so a failed directory fsync is an ERROR
 * (the caller must not act as if the write were durable). A failure before the rename removes
 * the temp file. Used by the key files (crypto/keys.ts), the data directory's small files
 * (node/datadir.ts) and the consensus signer file (node/consensus/signer-file.ts).
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { chmod, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errnoCode, FednodeError } from './errors.js';

/** Which step of the durable write failed. */
export type DurableWriteStep = 'open-temp' | 'write' | 'fsync' | 'rename' | 'open-dir' | 'fsync-dir';

export class DurableWriteError extends FednodeError<'ERR_DURABLE_WRITE'> {
  constructor(path: string, step: DurableWriteStep, cause: unknown) {
    const errno = errnoCode(cause) ?? null;
    super('ERR_DURABLE_WRITE', `cannot write ${path} durably: ${step} failed (${cause instanceof Error ? cause.message : String(cause)})`, { path, step, errno }, { cause });
    this.name = 'DurableWriteError';
  }
}

export interface DurableWriteOptions {
  /** Mode of the new file (set on the temp file before the rename). @default 0o600 */
  readonly mode?: number;
  /**
   * An open handle on the target's directory, kept by callers that write often (the signer
   * file writes before every vote: opening the directory each time is a round trip). The
   * caller owns and closes it.
   */
  readonly dirHandle?: FileHandle;
  /** TEST ONLY: replaces the directory fsync (to prove its failure is an error). */
  readonly testOnlySyncDir?: (dh: FileHandle) => Promise<void>;
}

/** write temp -> fsync -> rename -> fsync directory; throws DurableWriteError naming the step. */
export async function writeFileDurable(path: string, data: string | Uint8Array, o: DurableWriteOptions = {}): Promise<void> {
  const mode = o.mode ?? 0o600;
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let step: DurableWriteStep = 'open-temp';
  let renamed = false;
  try {
    const fh = await open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, mode);
    try {
      step = 'write';
      await fh.writeFile(data);
      await chmod(tmp, mode); // umask may have narrowed it
      step = 'fsync';
      await fh.sync();
    } finally {
      await fh.close();
    }
    step = 'rename';
    await rename(tmp, path);
    renamed = true;
    step = 'open-dir';
    const dh = o.dirHandle ?? (await open(dir, fsConstants.O_RDONLY));
    try {
      step = 'fsync-dir';
      await (o.testOnlySyncDir ?? ((h: FileHandle) => h.sync()))(dh);
    } finally {
      if (o.dirHandle === undefined) await dh.close();
    }
  } catch (err) {
    if (!renamed && step !== 'open-temp') await unlink(tmp).catch(() => undefined);
    throw new DurableWriteError(path, step, err);
  }
}
