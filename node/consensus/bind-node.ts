/**
 * Production bindings of the driver's clock, timers and stores (ports.ts): real timers,
 * the signer file (tmp, fsync, rename, fsync dir), the LevelDB decided log and the audit log.
 */
import { mkdir } from 'node:fs/promises';
import type { Store } from '../store/index.js';
import { AuditLog } from './audit-log.js';
import { DecidedLog } from './decided-log.js';
import type { Clock, DriverPorts, SignerStore, TimerHandle, Timers } from './ports.js';
import { SignerFile } from './signer-file.js';

/** Node's timers. Intervals and timeouts are unref'd by nobody: the runtime stops the driver. */
export const realTimers: Timers = {
  after(ms: number, fn: () => void): TimerHandle {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
  every(ms: number, fn: () => void): TimerHandle {
    const t = setInterval(fn, ms);
    return { cancel: () => clearInterval(t) };
  },
  soon(fn: () => void): void {
    setImmediate(fn);
  },
};

/** The signer file in `stateDir` (created 0700 on open). */
export function signerFileStore(stateDir: string): SignerStore {
  const file = new SignerFile(stateDir);
  return {
    open: async () => {
      await mkdir(stateDir, { recursive: true, mode: 0o700 });
    },
    load: () => file.load(),
    write: (s) => file.write(s),
    close: () => file.close(),
  };
}

export interface NodePortsOptions {
  readonly now: Clock;
  readonly store: Store;
  readonly stateDir: string;
  readonly auditLogPath?: string | null;
}

/** The ports a node runs the driver with. */
export function nodePorts(o: NodePortsOptions): DriverPorts {
  return {
    now: o.now,
    timers: realTimers,
    signer: signerFileStore(o.stateDir),
    decided: new DecidedLog(o.store.section('consensus')),
    audit: o.auditLogPath === undefined || o.auditLogPath === null ? null : new AuditLog(o.auditLogPath),
    decidedWhere: `${o.store.path} (section consensus)`,
  };
}
