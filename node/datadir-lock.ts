/**
 * One node per data directory: `node.lock` is created with O_EXCL and holds the owner's
 * pid and, on Linux, the owner's start time (field 22 of /proc/<pid>/stat). LevelDB's own
 * LOCK is a second guard in node/store.
 *
 * A lock is stale, and taken over with a reason the node logs, when its pid is dead, is a
 * zombie (killed with -9 and not yet reaped: `kill(pid, 0)` still succeeds on it), or now
 * belongs to another process (the recorded start time differs: the pid was reused). A lock
 * written before start times were recorded (pid only) counts as live only if that pid runs
 * a fednode (its command line names cli/main.js or fednode).
 */
import { constants as fsc } from 'node:fs';
import { open, readFile, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { RuntimeError } from './runtime/errors.js';
import { errnoCode } from '../base/errors.js';

export interface DataDirLock {
  readonly path: string;
  /** Set when a stale lock was taken over: whose it was and why it counted as stale. */
  readonly tookOver: { pid: number; reason: string } | null;
  release(): Promise<void>;
}

/** How often a contended lock is retried before giving up (each try is one O_EXCL create). */
const LOCK_ATTEMPTS = 3;

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errnoCode(e) === 'EPERM'; // exists, owned by someone else
  }
}

/** /proc/<pid>/stat: state (field 3) and start time in clock ticks (field 22); null off Linux or when gone. */
async function procStat(pid: number): Promise<{ state: string; start: string } | null> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' '); // comm may hold spaces
    const state = rest[0];
    const start = rest[19];
    return state !== undefined && start !== undefined ? { state, start } : null;
  } catch {
    return null;
  }
}

async function looksLikeFednode(pid: number): Promise<boolean> {
  try {
    const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ');
    return /fednode|cli\/main\.[jt]s/.test(cmd);
  } catch {
    return true; // no /proc to ask: trust the pid, as before
  }
}

/** Why the lock's owner no longer holds it, or null when it is live. */
export async function staleReason(text: string): Promise<{ pid: number; reason: string } | { pid: number; reason: null } | null> {
  const [pidText, startText] = text.trim().split(/\s+/);
  const pid = Number.parseInt(pidText ?? '', 10);
  if (!Number.isInteger(pid) || pid <= 0) return null; // garbage: not a lock anyone holds
  if (!pidExists(pid)) return { pid, reason: 'its process is gone' };
  const st = await procStat(pid);
  if (st !== null && (st.state === 'Z' || st.state === 'X')) return { pid, reason: 'its process was killed and is not yet reaped' };
  if (startText !== undefined && st !== null && st.start !== startText) return { pid, reason: 'its pid now belongs to another process' };
  if (startText === undefined && !(await looksLikeFednode(pid))) return { pid, reason: 'its pid runs something other than fednode' };
  return { pid, reason: null };
}

export async function acquireLock(root: string, lockPath: string): Promise<DataDirLock> {
  const path = lockPath;
  const self = await procStat(process.pid);
  const mine = `${process.pid}${self !== null ? ` ${self.start}` : ''}\n`;
  let tookOver: { pid: number; reason: string } | null = null;
  for (let attempt = 0; attempt < LOCK_ATTEMPTS; attempt++) {
    try {
      const fh = await open(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
      try {
        await fh.writeFile(mine);
        await fh.sync();
      } finally {
        await fh.close();
      }
      let released = false;
      return {
        path,
        tookOver,
        release: async () => {
          if (released) return;
          released = true;
          try {
            if ((await readFile(path, 'utf8')) === mine) await unlink(path);
          } catch {
            // already gone
          }
        },
      };
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw e;
    }
    let text = '';
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') continue; // released meanwhile: try again
      throw e;
    }
    const stale = await staleReason(text);
    if (stale !== null && stale.reason === null) {
      throw new RuntimeError('ERR_DATADIR_LOCKED', `data directory ${root} is in use by another fednode (pid ${stale.pid}); stop it first, or if no node runs, remove ${path}`, { dir: root, pid: stale.pid, file: path });
    }
    tookOver = stale !== null && stale.reason !== null ? { pid: stale.pid, reason: stale.reason } : { pid: 0, reason: `the lock file held no pid (${JSON.stringify(text.slice(0, 40))})` };
    await unlink(path).catch(() => undefined);
  }
  throw new RuntimeError('ERR_DATADIR_LOCKED', `could not take the lock ${path} (contended)`, { file: path, dir: dirname(path) });
}
