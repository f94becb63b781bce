/**
 * The durable signer state of the consensus driver, in ONE file in the state directory:
 * the core's signer record (last height/round/step, signature, lock and valid value) and this
 * node's own signed messages of that height (so a restart re-broadcasts them instead of
 * signing anew; the core refuses a different digest at a signed HRS).
 *
 * Written as CometBFT's privval does, plus the directory fsync it lacks: write a temp file,
 * fsync it, rename it over the old one, fsync the directory. A crash at any point leaves
 * either the old or the new file, never a torn one.
 */
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readFile } from 'node:fs/promises';
import { writeFileDurable } from '../../base/durable-write.js';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeCanonical, encodeCanonical, expectRecord } from '../../crypto/cbor.js';
import { decodeMessage, decodeSignerRecord, encodeSignerRecord, MAX_MESSAGE_BYTES, MAX_RECORD_BYTES } from '../../consensus/codec.js';
import type { ConsensusMessage, SignerRecord } from '../../consensus/types.js';
import { ConsensusDriverError } from './api.js';

export const SIGNER_FILE_NAME = 'consensus-signer.cbor';
const SIGNER_FILE_VERSION = 1;
/**
 * Own messages kept per height: a proposal, a prevote and a precommit per round; 48 covers 16
 * rounds (round 16 takes minutes with LAN timeouts). Oldest rounds go first: the guard refuses
 * re-signing them anyway, only the latest rounds matter to peers.
 */
export const MAX_OWN_MESSAGES = 48;
/** Record plus the own messages (a proposal is at most one envelope body). */
const MAX_FILE_BYTES = MAX_RECORD_BYTES + MAX_OWN_MESSAGES * MAX_MESSAGE_BYTES;

export interface SignerState {
  readonly record: SignerRecord;
  /** Own signed messages at record.height, oldest first (wire bytes of codec.encodeMessage). */
  readonly own: readonly Uint8Array[];
}

function corrupt(path: string, reason: string): ConsensusDriverError {
  return new ConsensusDriverError(
    'ERR_CONSENSUS_STATE_CORRUPT',
    `consensus signer file ${path} cannot be read (${reason}). It guards this node against double-signing, so it is never reset silently. ` +
      `To fix: restore it from a backup of this data directory; or, if this node must rejoin anyway, stop it, move the file aside, and start it only after the cluster has decided past the height this node last signed at.`,
    { path, reason },
  );
}

export class SignerFile {
  readonly path: string;
  private readonly dir: string;
  /**
   * The state directory, created and opened once and kept open for its fsyncs: a write sits on
   * the critical path of every vote, and each filesystem call is one round trip through the
   * libuv pool and back to a busy event loop.
   */
  private dirHandle: FileHandle | null = null;

  constructor(stateDir: string) {
    this.dir = stateDir;
    this.path = join(stateDir, SIGNER_FILE_NAME);
  }

  /** null when no file exists (fresh node). Throws ERR_CONSENSUS_STATE_CORRUPT on a damaged file. */
  async load(): Promise<SignerState | null> {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw corrupt(this.path, `read failed: ${(err as Error).message}`);
    }
    if (bytes.length > MAX_FILE_BYTES) throw corrupt(this.path, `${bytes.length} bytes exceeds ${MAX_FILE_BYTES}`);
    let r: Record<string, unknown>;
    try {
      r = expectRecord(decodeCanonical(bytes, MAX_FILE_BYTES), ['v', 'record', 'own'], 'signer file');
    } catch (err) {
      throw corrupt(this.path, `not canonical CBOR: ${(err as Error).message}`);
    }
    if (r['v'] !== SIGNER_FILE_VERSION) throw corrupt(this.path, `unsupported version ${String(r['v'])}`);
    const recBytes = r['record'];
    const record = recBytes instanceof Uint8Array ? decodeSignerRecord(recBytes) : null;
    if (record === null) throw corrupt(this.path, 'signer record does not decode');
    const own = r['own'];
    if (!Array.isArray(own) || own.length > MAX_OWN_MESSAGES) throw corrupt(this.path, 'own messages are not a bounded list');
    for (const m of own as unknown[]) {
      if (!(m instanceof Uint8Array) || decodeMessage(m) === null) throw corrupt(this.path, 'an own message does not decode');
    }
    return { record, own: own as Uint8Array[] };
  }

  /** Durable write: tmp, fsync, rename over, fsync the directory. */
  async write(state: SignerState): Promise<void> {
    const bytes = encodeCanonical({ v: SIGNER_FILE_VERSION, record: encodeSignerRecord(state.record), own: [...state.own] });
    if (this.dirHandle === null) {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      this.dirHandle = await open(this.dir, fsConstants.O_RDONLY);
    }
    await writeFileDurable(this.path, bytes, { mode: 0o600, dirHandle: this.dirHandle });
  }

  /** Release the directory handle (the driver's stop). A later write opens it again. */
  async close(): Promise<void> {
    const dh = this.dirHandle;
    this.dirHandle = null;
    await dh?.close();
  }
}

/** Decoded own messages of a loaded state (already checked to decode by `load`). */
export function ownMessages(state: SignerState): ConsensusMessage[] {
  const out: ConsensusMessage[] = [];
  for (const b of state.own) {
    const m = decodeMessage(b);
    if (m !== null) out.push(m);
  }
  return out;
}
