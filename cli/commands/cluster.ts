/**
 * `fednode cluster --nodes N`: a whole cluster on this machine, as real child
 * processes on loopback, each with its own data directory: node-1 creates the
 * cluster, the others join with an invite from node-1. Prints each node's status,
 * then waits; Ctrl-C / SIGTERM stops every node cleanly (SIGTERM, then SIGKILL after
 * a grace period) and exits 0 when all stopped cleanly.
 */
import { spawn, execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Command } from '../command.js';
import { flagBool, flagNumber, flagString } from '../command.js';
import { pathExists, readControlToken, dataDirPaths, writeFileAtomic } from '../../node/datadir.js';
import { loadConfig, renderConfig, validateConfig } from '../../node/config.js';
import { controlClient } from '../../node/control/client.js';
import type { NodeStatus } from '../../node/runtime/node.js';
import { RuntimeError } from '../../node/runtime/errors.js';
import { table } from './format.js';
import { nodeProcessEnv } from '../../node/metrics/heap.js';
import { ensureTinyModel } from './model.js';
import { UsageError } from '../args.js';

/** The model the local cluster serves out of the box (simulated: no weights). */
export const CLUSTER_SIMULATED_MODEL = 'simulated-7b';

/** Nodes one machine runs for a demo/test; 16 keeps ports, memory and logs sane. */
export const CLUSTER_NODES_MAX = 16;
/** A node is ready in about a second; 30 s covers a loaded CI machine. */
const READY_TIMEOUT_MS = 30_000;
/** A joiner's member.add commits in well under a second on loopback; 30 s covers a loaded CI machine. */
const ADMIT_TIMEOUT_MS = 30_000;
/** Time a node gets to shut down after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 10_000;
/** Bootstrap addresses written into a reused node's config: the config schema's own bound. */
const BOOTSTRAP_MAX = 64;

const mainJs = fileURLToPath(new URL('../main.js', import.meta.url));

interface ReadyLine {
  event: 'ready';
  peerId: string;
  cluster: string;
  api: string | null;
  control: string;
  addrs: string[];
  pid: number;
}

interface Member {
  name: string;
  dir: string;
  child: ChildProcess;
  ready: ReadyLine;
  exited: Promise<number | null>;
}

function runCli(args: readonly string[]): Promise<string> {
  return new Promise((res, rej) => {
    execFile(process.execPath, [mainJs, ...args], { maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null) rej(new RuntimeError('ERR_NOT_AVAILABLE', `fednode ${args[0] ?? ''} failed: ${stderr.trim() || err.message}`, { args: [...args] }));
      else res(stdout);
    });
  });
}

function startChild(name: string, dir: string, logFile: string): Promise<Member> {
  // detached: each node gets its own process group, so a terminal Ctrl-C (SIGINT to the whole
  // foreground group) reaches only `cluster`, which stops each node with exactly one SIGTERM.
  // Sharing the group, every node got SIGINT and then the SIGTERM as a second signal, and exited 1.
  const child = spawn(process.execPath, [mainJs, 'start', '--json', '--data-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'], env: nodeProcessEnv(process.env), detached: true });
  const log = createWriteStream(logFile, { flags: 'a' });
  child.stderr?.pipe(log);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((res, rej) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new RuntimeError('ERR_NOT_AVAILABLE', `${name} was not ready within ${READY_TIMEOUT_MS} ms (log: ${logFile})`, { name }));
    }, READY_TIMEOUT_MS);
    const rl = createInterface({ input: child.stdout ?? process.stdin });
    rl.on('line', (line) => {
      try {
        const j = JSON.parse(line) as Partial<ReadyLine>;
        if (j.event === 'ready') {
          clearTimeout(timer);
          res({ name, dir, child, ready: j as ReadyLine, exited });
        }
      } catch {
        // not a JSON line
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      rej(new RuntimeError('ERR_NOT_AVAILABLE', `${name} exited with code ${String(code)} before it was ready (log: ${logFile})`, { name, code }));
    });
  });
}

/** Replace a reused node's bootstrap list by the running members' current addresses (config.json, written atomically). */
async function rebootstrap(configFile: string, running: readonly Member[]): Promise<void> {
  const config = await loadConfig(configFile);
  const bootstrap = running.flatMap((m) => m.ready.addrs.filter((a) => a.includes('/p2p/'))).slice(0, BOOTSTRAP_MAX);
  await writeFileAtomic(configFile, renderConfig(validateConfig({ ...config, bootstrap }, configFile)));
}

/**
 * Wait until the node on `dir` sees its own member.add decided. Joiners are admitted one at a
 * time: each admission grows the validator set, and the next member.add needs the new member
 * caught up and voting.
 */
async function waitAdmitted(m: Member): Promise<number | null> {
  const client = controlClient(m.ready.control, await readControlToken(dataDirPaths(m.dir).controlToken));
  const deadline = Date.now() + ADMIT_TIMEOUT_MS;
  for (;;) {
    const s = await client.get<NodeStatus>('/status').catch(() => null);
    if (s?.consensus.admission.admitted === true) return s.consensus.admission.admittedAtHeight;
    if (Date.now() > deadline) throw new RuntimeError('ERR_NOT_AVAILABLE', `${m.name} was not admitted by consensus within ${ADMIT_TIMEOUT_MS} ms (is node-1 running? see its log)`, { name: m.name });
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const clusterCommand: Command = {
  name: 'cluster',
  flags: [
    { name: 'nodes', type: 'int', min: 1, max: CLUSTER_NODES_MAX, placeholder: '<n>', description: 'number of nodes', defaultText: '3' },
    { name: 'dir', type: 'string', placeholder: '<dir>', description: 'parent of the nodes\' data dirs (node-1, node-2, ...); reused if they exist', defaultText: 'a new temp dir, removed on exit' },
    { name: 'advert-period', type: 'duration', placeholder: '<duration>', description: 'advert keep-alive of every node', defaultText: '5s' },
    { name: 'keep', type: 'boolean', description: 'keep the temp dir on exit' },
    { name: 'simulated-model', type: 'string', placeholder: '<model>', description: 'model id every node serves from the embedded simulated backend', defaultText: CLUSTER_SIMULATED_MODEL },
    { name: 'engine', type: 'string', placeholder: '<engine>', description: "'simulated' (no weights) or 'llama': every node runs the embedded llama.cpp engine on the project's tiny GGUF model (written to <dir>/tiny.gguf; model id 'tiny'; needs node-llama-cpp)", defaultText: 'simulated' },
  ],
  positionals: [],
  async run(ctx) {
    const engine = flagString(ctx.args, 'engine') ?? 'simulated';
    if (engine !== 'simulated' && engine !== 'llama') throw new UsageError(`--engine must be simulated or llama, got '${engine}'`, 'cluster');
    if (engine === 'llama' && flagString(ctx.args, 'simulated-model') !== undefined) throw new UsageError('--simulated-model applies to --engine simulated only', 'cluster');
    const n = flagNumber(ctx.args, 'nodes') ?? 3;
    const given = flagString(ctx.args, 'dir');
    const base = given !== undefined ? resolve(given) : await mkdtemp(join(tmpdir(), 'fednode-cluster-'));
    await mkdir(base, { recursive: true });
    const period = flagNumber(ctx.args, 'advert-period');
    // Every node serves the embedded simulated model, so the local cluster can
    // answer `fednode infer` on a fresh machine with no model weights.
    const simModel = flagString(ctx.args, 'simulated-model') ?? CLUSTER_SIMULATED_MODEL;
    // One CPU thread per node: three nodes on a small host must not oversubscribe its cores (llama.cpp collapses then).
    const serve = engine === 'llama' ? ['--gguf', await ensureTinyModel(base), '--llama-threads', '1'] : ['--simulated-model', simModel];
    const common = ['--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--api-port', '0', ...serve, ...(period !== undefined ? ['--advert-period', `${period}ms`] : [])];
    const members: Member[] = [];
    let stopping = false;
    const stopAll = async (): Promise<boolean> => {
      stopping = true;
      let clean = true;
      await Promise.all(
        members.map(async (m) => {
          if (m.child.exitCode !== null) {
            clean &&= m.child.exitCode === 0;
            return;
          }
          m.child.kill('SIGTERM');
          const t = setTimeout(() => m.child.kill('SIGKILL'), STOP_GRACE_MS);
          const code = await m.exited;
          clearTimeout(t);
          if (code !== 0) clean = false;
        }),
      );
      return clean;
    };
    let signalled = false;
    const { promise: signal, resolve: onSignal } = (() => {
      let r: () => void = () => undefined;
      const p = new Promise<void>((res) => {
        r = res;
      });
      return { promise: p, resolve: r };
    })();
    const handler = (): void => {
      signalled = true;
      onSignal();
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
    try {
      for (let i = 1; i <= n && !signalled; i++) {
        const name = `node-${i}`;
        const dir = join(base, name);
        if (await pathExists(join(dir, 'config.json'))) {
          // Reused: nodes listen on port 0, so the bootstrap addresses saved at join time are
          // stale; point this node at the members already running under their new addresses.
          if (members.length > 0) await rebootstrap(dataDirPaths(dir).config, members);
        } else {
          if (i === 1) {
            await runCli(['init', '--new-cluster', '--data-dir', dir, '--name', name, ...common]);
          } else {
            const first = members[0];
            if (first === undefined) throw new RuntimeError('ERR_NOT_AVAILABLE', 'node-1 is not running; cannot invite');
            const inv = JSON.parse(await runCli(['invite', '--json', '--data-dir', first.dir])) as { token: string };
            await runCli(['join', inv.token, '--data-dir', dir, '--name', name, ...common]);
          }
        }
        const m = await startChild(name, dir, join(base, `${name}.log`));
        members.push(m);
        if (i > 1) await waitAdmitted(m);
        void m.exited.then((code) => {
          if (!stopping) ctx.err(`${name} exited unexpectedly with code ${String(code)} (log: ${join(base, `${name}.log`)})\n`);
        });
      }
      const rows = members.map((m) => [m.name, m.ready.peerId, String(m.ready.pid), m.ready.control, m.ready.addrs[0] ?? '-']);
      ctx.result(
        { event: 'cluster-ready', dir: base, cluster: members[0]?.ready.cluster ?? null, nodes: members.map((m) => ({ name: m.name, dataDir: m.dir, ...m.ready })) },
        `cluster ${members[0]?.ready.cluster ?? ''} with ${members.length} node(s) in ${base}\n` + table(['NAME', 'PEER', 'PID', 'CONTROL', 'ADDRESS'], rows) + `status of one node: fednode status --data-dir ${join(base, 'node-1')}\nCtrl-C stops all nodes.\n`,
      );
      if (!signalled) await signal;
      const clean = await stopAll();
      if (!ctx.json) ctx.err(clean ? 'all nodes stopped cleanly\n' : 'some nodes did not stop cleanly (see their logs)\n');
      else ctx.out(JSON.stringify({ event: 'cluster-stopped', clean }) + '\n');
      return clean ? 0 : 1;
    } catch (e) {
      await stopAll();
      throw e;
    } finally {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
      if (given === undefined && flagBool(ctx.args, 'keep') !== true) await rm(base, { recursive: true, force: true }).catch(() => undefined);
    }
  },
};
