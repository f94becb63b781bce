/**
 * Running a probe command (nvidia-smi) through a small injected interface, so tests
 * feed recorded output through the same parsing path the node uses.
 */
import { execFile } from 'node:child_process';

export type CommandFailure = 'not-found' | 'timeout' | 'oversize' | 'exit' | 'error';

export type CommandResult =
  | { readonly ok: true; readonly stdout: string }
  | { readonly ok: false; readonly reason: CommandFailure; readonly detail: string; readonly stdout: string };

export interface CommandOptions {
  /** Kill the child after this long (ms). */
  readonly timeoutMs: number;
  /** Bound on stdout + stderr bytes kept; more kills the child ('oversize'). */
  readonly maxBytes: number;
}

/** Runs `file args` without a shell and never throws: every failure is a result. */
export type CommandRunner = (file: string, args: readonly string[], opts: CommandOptions) => Promise<CommandResult>;

interface ExecError extends Error {
  code?: string | number;
  killed?: boolean;
  signal?: NodeJS.Signals | null;
}

/** The real runner: child_process.execFile (no shell), with a timeout and an output bound. */
export const execFileRunner: CommandRunner = (file, args, opts) =>
  new Promise<CommandResult>((resolve) => {
    try {
      execFile(
        file,
        [...args],
        { timeout: opts.timeoutMs, maxBuffer: opts.maxBytes, encoding: 'utf8', windowsHide: true, env: { ...process.env, LC_ALL: 'C' } },
        (err, stdout, stderr) => {
          if (err === null) {
            resolve({ ok: true, stdout });
            return;
          }
          const e = err as ExecError;
          const out = typeof stdout === 'string' ? stdout : '';
          const errText = typeof stderr === 'string' ? stderr.trim().slice(0, 500) : '';
          if (e.code === 'ENOENT') resolve({ ok: false, reason: 'not-found', detail: `${file}: not found`, stdout: '' });
          else if (e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') resolve({ ok: false, reason: 'oversize', detail: `${file}: output over ${opts.maxBytes} bytes`, stdout: '' });
          else if (e.killed === true) resolve({ ok: false, reason: 'timeout', detail: `${file}: no answer within ${opts.timeoutMs} ms`, stdout: '' });
          else if (typeof e.code === 'number') resolve({ ok: false, reason: 'exit', detail: `${file}: exit code ${e.code}${errText !== '' ? `: ${errText}` : ''}`, stdout: out });
          else resolve({ ok: false, reason: 'error', detail: `${file}: ${e.message}`, stdout: out });
        },
      );
    } catch (err) {
      resolve({ ok: false, reason: 'error', detail: `${file}: ${err instanceof Error ? err.message : String(err)}`, stdout: '' });
    }
  });
