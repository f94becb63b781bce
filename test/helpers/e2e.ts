/** Helpers for end-to-end tests: the real `fednode` binary (dist/cli/main.js) as child processes. */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const MAIN = join(ROOT, 'dist', 'cli', 'main.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function fednode(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

export interface Running {
  child: ChildProcess;
  /** The readiness JSON line. */
  ready: Record<string, unknown>;
  /** Everything written to stderr so far. */
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawn a long-running command and wait for the first stdout JSON line whose `event` is `readyEvent`.
 * `nodeArgs` go to node itself (e.g. --cpu-prof, which NODE_OPTIONS refuses). */
export function spawnUntil(args: readonly string[], readyEvent: string, timeoutMs = 30_000, nodeArgs: readonly string[] = []): Promise<Running> {
  const child = spawn(process.execPath, [...nodeArgs, MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (b: Buffer) => {
    err += b.toString();
    if (err.length > 1_000_000) err = err.slice(-500_000); // bound the captured log
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`not ready within ${timeoutMs} ms: fednode ${args.join(' ')}\n${err.slice(-4000)}`));
    }, timeoutMs);
    const rl = createInterface({ input: child.stdout });
    rl.on('line', (line) => {
      let j: Record<string, unknown>;
      try {
        j = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (j['event'] === readyEvent) {
        clearTimeout(timer);
        resolve({ child, ready: j, stderr: () => err, exited });
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${String(code)} before ready: fednode ${args.join(' ')}\n${err.slice(-4000)}`));
    });
  });
}

/** Poll `fn` until it returns a non-undefined value (real time: this is an end-to-end test). */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last !== null ? `: ${last instanceof Error ? last.message : JSON.stringify(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface PeerRow {
  peerId: string;
  state: 'live' | 'stale';
  ageMs: number;
  seq: number;
  advert: { profile: string; gpus: unknown[]; cpuLoad: number | null };
}

/** GET a control endpoint of the node on `dir` directly (faster than a CLI process for polling). */
export async function control<T>(dir: string, path: string): Promise<T> {
  const rt = JSON.parse(await readFile(join(dir, 'runtime.json'), 'utf8')) as { controlUrl: string };
  const token = (await readFile(join(dir, 'control.token'), 'utf8')).trim();
  const r = await fetch(rt.controlUrl + path, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) });
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  return (await r.json()) as T;
}

/**
 * A free loopback TCP port for nodes that must come back at the same address (bound, released).
 * Drawn BELOW the kernel's ephemeral range (ip_local_port_range): a port the kernel handed out
 * for port 0 could be handed again to any other test's listener or outgoing connection before
 * the node binds it (CI saw EADDRINUSE that way); ports below the range are only ever taken by
 * an explicit bind. Bound: 200 attempts, then an error naming the range.
 */
const handedOut = new Set<number>(); // never the same port twice in one test process (none is bound in between)
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const { readFile: read } = await import('node:fs/promises');
  const range = await read('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '32768 60999');
  const low = Number(range.trim().split(/\s+/)[0]) || 32768;
  const from = Math.max(1024, Math.min(10_000, low - 1000));
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = from + Math.floor(Math.random() * (low - from));
    if (handedOut.has(port)) continue;
    const srv = createServer();
    const ok = await new Promise<boolean>((res) => {
      srv.once('error', () => res(false));
      srv.listen(port, '127.0.0.1', () => res(true));
    });
    if (ok) {
      await new Promise<void>((res) => srv.close(() => res()));
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free loopback port below the ephemeral range (${range.trim()}) after 200 attempts`);
}

/**
 * Node processes and temp dirs of one e2e file, cleaned up after it (SIGKILL what still runs,
 * remove the dirs). `start(dir)` runs `fednode start --json` until its ready line.
 */
export function e2eProcesses(afterAllHook: (fn: () => Promise<void>) => void): { start: (dir: string, timeoutMs?: number) => Promise<Running>; tempDir: (prefix: string) => Promise<string> } {
  const running: Running[] = [];
  const dirs: string[] = [];
  afterAllHook(async () => {
    for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  return {
    async start(dir, timeoutMs = 60_000) {
      const r = await spawnUntil(['start', '--json', '--data-dir', dir], 'ready', timeoutMs);
      running.push(r);
      return r;
    },
    async tempDir(prefix) {
      const d = await mkdtemp(join(tmpdir(), prefix));
      dirs.push(d);
      return d;
    },
  };
}
