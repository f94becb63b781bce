/**
 * `fednode doctor`: checks what a node needs and says how to fix each failure.
 * Exit 0 when nothing failed (warnings allowed), 1 otherwise.
 */
import { createSocket } from 'node:dgram';
import { createConnection, createServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Command, CommandContext } from '../command.js';
import type { FednodeConfig } from '../../node/config.js';
import { loadConfig } from '../../node/config.js';
import { checkInitialised, checkPrivateFile, pathExists, readClusterFile, readRuntimeFile, readSwarmKey } from '../../node/datadir.js';
import { execFileRunner } from '../../node/probes/command.js';
import { probeGpus } from '../../node/probes/gpu.js';
import { probePowerSupply } from '../../node/probes/power-supply.js';
import { readRaplSample } from '../../node/probes/rapl.js';
import { nodeSysfsReader } from '../../node/probes/sysfs.js';
import type { PeersReply } from './peers.js';
import type { ConsensusStatusJson } from '../../node/runtime/consensus-routes.js';
import type { NodeStatus } from '../../node/runtime/node.js';
import { shortId } from './format.js';
import { missingText } from './status.js';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';
export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  fix: string | null;
}

/** Socket probes must not hang the doctor: 2 s is ample on a LAN. */
const PROBE_TIMEOUT_MS = 2000;

function errMsg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function portFree(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    srv.listen(port, host, () => srv.close(() => resolve(null)));
  });
}

function tcpReachable(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const s = createConnection({ host, port });
    const t = setTimeout(() => {
      s.destroy();
      resolve('timeout');
    }, PROBE_TIMEOUT_MS);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve(null);
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(t);
      resolve(e.code ?? e.message);
    });
  });
}

function mdnsPossible(): Promise<string | null> {
  return new Promise((resolve) => {
    const sock = createSocket({ type: 'udp4', reuseAddr: true });
    const done = (r: string | null): void => {
      try {
        sock.close();
      } catch {
        // already closed
      }
      resolve(r);
    };
    sock.once('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
    sock.bind(5353, () => {
      try {
        sock.addMembership('224.0.0.251');
        done(null);
      } catch (e) {
        done(errMsg(e));
      }
    });
  });
}

function tcpPort(addr: string): { host: string; port: number } | null {
  const m = /^\/(ip4|ip6|dns|dns4|dns6)\/([^/]+)\/tcp\/(\d+)/.exec(addr);
  if (m?.[2] === undefined || m[3] === undefined) return null;
  return { host: m[2], port: Number(m[3]) };
}

export async function runDoctor(ctx: CommandContext): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (name: string, status: CheckStatus, detail: string, fix: string | null = null): void => {
    checks.push({ name, status, detail, fix });
  };
  const p = ctx.paths;
  // 1. data directory
  try {
    await checkInitialised(p.root);
    add('data directory', 'ok', p.root);
  } catch (e) {
    add('data directory', 'fail', errMsg(e), `run \`fednode init --new-cluster --data-dir ${p.root}\` or \`fednode join <token> --data-dir ${p.root}\``);
    return checks; // nothing else can be checked meaningfully
  }
  // 2. key and secret permissions
  for (const [name, file] of [['identity key', p.identity], ['control token', p.controlToken], ['swarm key', p.swarmKey]] as const) {
    if (name === 'swarm key' && !(await pathExists(file))) continue;
    try {
      await checkPrivateFile(file, 'ERR_DATADIR_NOT_INITIALISED');
      add(`${name} permissions`, 'ok', `${file} is private (0600)`);
    } catch (e) {
      add(`${name} permissions`, 'fail', errMsg(e), `chmod 600 ${file}`);
    }
  }
  try {
    const { loadIdentity } = await import('../../crypto/keys.js'); // lazy: light CLI start-up
    const id = await loadIdentity(p.identity);
    add('identity key', 'ok', `peer id ${id.peerId}`);
  } catch (e) {
    add('identity key', 'fail', errMsg(e), 'restore the key from a backup, or re-create the node (a new key is a new member)');
  }
  // 3. config
  let config: FednodeConfig | null = null;
  try {
    config = await loadConfig(p.config);
    add('config', 'ok', p.config);
  } catch (e) {
    add('config', 'fail', errMsg(e), `fix the field named above in ${p.config} (\`fednode help config\` lists every field and its default)`);
  }
  // 4. cluster
  try {
    const c = await readClusterFile(p.cluster);
    await readSwarmKey(p.swarmKey);
    add('cluster', 'ok', `${c.id}, ${c.genesis.length} genesis member(s)`);
  } catch (e) {
    add('cluster', 'fail', errMsg(e), 'join a cluster: `fednode join <token>` (token from `fednode invite` on a member)');
  }
  // 5. running node / store
  const rt = await readRuntimeFile(p.runtime);
  let running = false;
  if (rt !== null) {
    try {
      await (await ctx.control()).get('/status', { timeoutMs: PROBE_TIMEOUT_MS });
      running = true;
      add('node', 'ok', `running, pid ${rt.pid}, control ${rt.controlUrl}`);
    } catch (e) {
      add('node', 'warn', `runtime.json names pid ${rt.pid} but the control API does not answer: ${errMsg(e)}`, 'if no node runs, start one: `fednode start`');
    }
  } else {
    add('node', 'warn', 'not running', `start it: fednode start --data-dir ${p.root}`);
  }
  if (!running) {
    try {
      const { openStore } = await import('../../node/store/index.js');
      const s = await openStore(p.store, { createIfMissing: false });
      await s.close();
      add('store', 'ok', p.store);
    } catch (e) {
      add('store', 'fail', errMsg(e), 'if another process holds it, stop that process; if corrupt, move the store directory away (the node re-syncs from peers)');
    }
  }
  // 6. ports
  if (config !== null) {
    const wanted: Array<{ what: string; host: string; port: number }> = [];
    for (const a of config.listen) {
      const t = tcpPort(a);
      if (t !== null && t.port !== 0) wanted.push({ what: `libp2p ${a}`, host: t.host, port: t.port });
    }
    if (config.api.enabled && config.api.port !== 0) wanted.push({ what: 'inference API', host: config.api.host, port: config.api.port });
    if (config.control.port !== 0) wanted.push({ what: 'control API', host: config.control.host, port: config.control.port });
    for (const w of wanted) {
      if (running) {
        add(`port ${w.port}`, 'skip', `${w.what}: held by the running node`);
        continue;
      }
      const r = await portFree(w.host, w.port);
      if (r === null) add(`port ${w.port}`, 'ok', `${w.what}: free`);
      else add(`port ${w.port}`, 'fail', `${w.what}: cannot bind ${w.host}:${w.port} (${r})`, `stop what uses it (\`ss -ltnp | grep :${w.port}\`) or change the port in ${p.config}`);
    }
    // 7. mDNS
    if (config.mdns.enabled) {
      const lan = Object.values(networkInterfaces())
        .flat()
        .filter((i) => i !== undefined && !i.internal && i.family === 'IPv4');
      const r = await mdnsPossible();
      if (lan.length === 0) add('mdns', 'warn', 'no non-loopback IPv4 interface: mDNS will only find nodes on this host', 'connect to the LAN, or list peers under "bootstrap" in the config');
      else if (r !== null) add('mdns', 'warn', `cannot join the mDNS group 224.0.0.251:5353 (${r})`, 'allow UDP 5353 multicast in the firewall, or set "bootstrap" addresses and "mdns": {"enabled": false}');
      else add('mdns', 'ok', `multicast possible on ${lan.length} interface(s)`);
    } else {
      add('mdns', 'skip', 'disabled in config (bootstrap addresses are used instead)');
    }
  }
  // 8. GPU
  const gpu = await probeGpus(execFileRunner, { binary: ctx.env['FEDNODE_NVIDIA_SMI'] ?? 'nvidia-smi' });
  if (gpu.gpus !== null) add('nvidia-smi', 'ok', `${gpu.gpus.length} GPU(s): ${gpu.gpus.map((g) => g.name).join(', ')}`);
  else add('nvidia-smi', 'warn', `no GPU readings: ${gpu.reason ?? 'unknown'}`, 'install the NVIDIA driver (nvidia-smi on PATH) if this machine has an NVIDIA GPU; without it the node still routes and serves CPU backends');
  // 9. power readings
  const ps = await probePowerSupply(nodeSysfsReader).catch(() => null);
  if (ps === null) add('power supply', 'warn', '/sys/class/power_supply not readable: power source unknown (null in adverts)', 'normal on desktops/VMs without power_supply entries; nothing to fix');
  else add('power supply', 'ok', `source ${ps.source ?? 'unknown'}${ps.batteryPct !== null ? `, battery ${ps.batteryPct}%` : ''}`);
  const rapl = await readRaplSample(nodeSysfsReader, ctx.now()).catch((e: unknown) => ({ ok: false as const, reason: errMsg(e), detail: '' }));
  if (rapl.ok) add('cpu power (RAPL)', 'ok', '/sys/class/powercap readable');
  else add('cpu power (RAPL)', 'warn', `not readable (${rapl.reason}${'detail' in rapl && rapl.detail !== '' ? `: ${rapl.detail}` : ''})`, 'CPU package power needs read access to /sys/class/powercap/intel-rapl:*/energy_uj (root, or a udev rule making it readable)');
  // 10. peers reachable
  if (running) {
    try {
      const r = await (await ctx.control()).get<PeersReply>('/peers', { timeoutMs: PROBE_TIMEOUT_MS });
      const connected = r.connections.filter((c) => c.connections > 0).length;
      const live = r.peers.filter((x) => x.state === 'live').length;
      const others = r.members.length - 1;
      if (others <= 0) add('peers', 'ok', 'this node is the only member');
      else if (connected === 0) add('peers', 'fail', `${others} other member(s), none connected`, 'check the bootstrap addresses in the config, firewalls (TCP listen port), and that the others run');
      else add('peers', live > 0 ? 'ok' : 'warn', `${connected} connected, ${live} with live adverts, ${others} other member(s)`, live > 0 ? null : 'adverts arrive within one period; wait a few seconds and run doctor again');
    } catch (e) {
      add('peers', 'fail', errMsg(e), null);
    }
    // 10b. every member connected (the mesh keeper's view: who is missing and why)
    try {
      const st = await (await ctx.control()).get<NodeStatus>('/status', { timeoutMs: PROBE_TIMEOUT_MS });
      const m = st.mesh as NodeStatus['mesh'] | undefined;
      if (m === undefined) add('mesh', 'warn', 'the running node does not report its mesh (an older version)', 'restart the node with this version of fednode');
      else if (m.missing.length === 0) add('mesh', 'ok', `${m.connected}/${m.targets} connected`);
      else {
        const noAddr = m.missing.some((x) => x.reason === 'no-address');
        add(
          'mesh',
          'warn',
          `${m.connected}/${m.targets} connected; ${m.missing.map((x) => `${shortId(x.peer)} ${missingText(x)}`).join('; ')}`,
          (noAddr ? 'a member without a known address is learnt from its advert once it connects to any member; add its address to "bootstrap" in the config to dial it directly. ' : '') +
            'for an unreachable member: check that it runs (`fednode status` there), its TCP listen port and firewall; a member that moved to a new address dials this node when it starts (it keeps an address book)',
        );
      }
    } catch (e) {
      add('mesh', 'fail', errMsg(e), null);
    }
    // 11. membership by consensus
    try {
      const c = await (await ctx.control()).get<ConsensusStatusJson>('/consensus/status', { timeoutMs: PROBE_TIMEOUT_MS });
      const a = c.admission;
      if (a.admitted) add('membership', 'ok', `${a.admittedAtHeight === 0 ? 'genesis member' : a.admittedAtHeight !== null ? `admitted at height ${a.admittedAtHeight}` : 'member'}; consensus decided ${c.decidedHeight}, ${c.validators.length} validator(s)`);
      else add('membership', 'warn', `not admitted yet (consensus decided ${c.decidedHeight} heights known here)`, 'a member proposes member.add when it sees this node\'s join claim (its inviter must be running); clusters with admission "approve" need `fednode approve <this peer id>` on a member');
      // 12. decided heights are being stored (a full disk holds consensus at one height)
      if (c.storeError !== null) {
        add('consensus store', 'fail', `decided height ${c.storeError.height} cannot be stored: ${c.storeError.error} (${c.storeError.attempts} attempt(s))`, 'free disk space on the data directory\'s filesystem (or fix its permissions); the node retries every second and resumes by itself');
      }
      // 13. consensus wire: every other validator reachable point to point (else gossip relays it, slower)
      const w = c.wire;
      const others = w.direct + w.withoutChannel.length;
      if (c.isValidator && others > 0) {
        if (w.withoutChannel.length === 0) add('consensus wire', 'ok', `direct channels to all ${others} other validator(s)`);
        else
          add(
            'consensus wire',
            'warn',
            `no direct channel to ${w.withoutChannel.length} of ${others} validator(s) (${w.withoutChannel.join(', ')}): their consensus messages go through gossip relays`,
            'every node should reach every other: put them on one LAN (mDNS) or give each the others\' addresses as bootstrap; check firewalls on the TCP listen port. Channels open within seconds of a connection: if the peer was just started, run doctor again',
          );
      }
    } catch (e) {
      add('membership', 'fail', errMsg(e), null);
    }
  } else if (config !== null && config.bootstrap.length > 0) {
    for (const b of config.bootstrap) {
      const t = tcpPort(b);
      if (t === null) continue;
      const r = await tcpReachable(t.host, t.port);
      if (r === null) add(`bootstrap ${t.host}:${t.port}`, 'ok', 'TCP reachable');
      else add(`bootstrap ${t.host}:${t.port}`, 'warn', `not reachable (${r})`, 'start that node, or fix the address / firewall');
    }
  }
  return checks;
}

export const doctorCommand: Command = {
  name: 'doctor',
  flags: [],
  positionals: [],
  async run(ctx) {
    const checks = await runDoctor(ctx);
    const failed = checks.filter((c) => c.status === 'fail').length;
    const mark: Record<CheckStatus, string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL', skip: 'skip' };
    const human = checks.map((c) => `${mark[c.status]}  ${c.name}: ${c.detail}${c.fix !== null && c.status !== 'ok' && c.status !== 'skip' ? `\n      fix: ${c.fix}` : ''}`).join('\n');
    ctx.result({ ok: failed === 0, checks }, `${human}\n${failed === 0 ? 'no failures' : `${failed} failure(s)`}\n`);
    return failed === 0 ? 0 : 1;
  },
};
