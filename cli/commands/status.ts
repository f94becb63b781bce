import type { Command } from '../command.js';
import type { NodeStatus } from '../../node/runtime/node.js';
import { ago, num, shortId } from './format.js';

/** The consensus part of `status`: height, registry hash, admission, evidence (equivocations) when any. */
export function consensusLines(c: NodeStatus['consensus'] | undefined): string[] {
  if (c === undefined) return [];
  const a = c.admission;
  const admitted = a.admittedAtHeight === 0 ? 'genesis member' : a.admittedAtHeight !== null ? `admitted at height ${a.admittedAtHeight}` : a.admitted ? 'admitted' : 'not admitted yet (waiting for a committed member.add)';
  const lines = [
    `consensus   height ${c.height} round ${c.round} ${c.step}  decided ${c.decidedHeight}  validators ${c.validators.length}${c.isValidator ? ' (voting)' : ''}  pending ops ${c.mempoolOps}`,
    `registry    ${c.registryHash}`,
    `membership  ${admitted}  admission ${a.mode}${a.pendingJoins > 0 ? `  ${a.pendingJoins} join(s) waiting for \`fednode approve\`` : ''}`,
  ];
  const wk = c.work;
  const pend = wk.pendingMembership.map((p) => `${p.kind} ${shortId(p.peerId)} in force at height ${p.effectiveHeight}`).join(', ');
  const cause = { ops: 'pending ops', membership: 'bringing membership changes into force', resume: 'resuming a height signed before a restart', peer: 'a validator is at this height' } as const;
  lines.push(
    wk.running
      ? `activity    deciding height ${c.height}: ${wk.cause === null ? 'started' : cause[wk.cause]}${pend === '' ? '' : ` (${pend})`}`
      : `activity    idle: nothing to decide${pend === '' ? '' : ` (pending: ${pend})`}`,
  );
  if (c.storeError !== null) {
    const e = c.storeError;
    lines.unshift(`consensus   HOLDING at height ${e.height}: the decided height cannot be stored (${e.error}); retried ${e.attempts} time(s)`);
  }
  const w = c.wire;
  const others = w.direct + w.withoutChannel.length;
  if (others > 0) {
    lines.push(
      w.withoutChannel.length === 0
        ? `wire        direct to ${w.direct}/${others} validators`
        : `wire        direct to ${w.direct}/${others} validators; no channel to ${w.withoutChannel.map(shortId).join(', ')} (messages also by gossip, ${w.gossipFallbacks} so far)`,
    );
  }
  if (c.evidence.length > 0) {
    lines.push(`evidence    ${c.evidence.length} equivocation(s)`);
    for (const e of c.evidence) lines.push(`            ${e.validator} signed two ${e.voteType}s at height ${e.height} round ${e.round}`);
  }
  return lines;
}

/** The mesh part of `status`: how many of the peers this node keeps a connection to are connected, and why the others are not. */
export function meshLines(m: NodeStatus['mesh'] | undefined): string[] {
  if (m === undefined) return [];
  const mode = m.mode === 'full' ? `full mesh (up to ${m.fullMeshMax} members)` : `bounded subset + validators (over ${m.fullMeshMax} members)`;
  const lines = [`mesh        ${m.connected}/${m.targets} connected  ${mode}  address book ${m.bookPeers} peer(s)${m.rejectedAddrs > 0 ? `  ${m.rejectedAddrs} address(es) refused` : ''}`];
  for (const x of m.missing) lines.push(`            missing ${shortId(x.peer)}: ${missingText(x)}`);
  if (m.lastBookError !== null) lines.push(`            address book not written: ${m.lastBookError}`);
  return lines;
}

/** Why one mesh target is not connected, in words. */
export function missingText(x: NodeStatus['mesh']['missing'][number]): string {
  const at = x.addrs.length > 0 ? ` at ${x.addrs.slice(0, 2).join(', ')}` : '';
  switch (x.reason) {
    case 'no-address':
      return 'no known address (not in bootstrap, no advert or identify seen yet)';
    case 'dialling':
      return `dialling${at}`;
    case 'backoff':
      return `unreachable${at} after ${x.failures} attempt(s), next in ${Math.ceil((x.nextInMs ?? 0) / 1000)} s${x.lastError !== null ? ` (${x.lastError})` : ''}`;
    case 'gave-up':
      return `unreachable${at}; stopped after ${x.failures} attempts until it reconnects or new addresses arrive${x.lastError !== null ? ` (${x.lastError})` : ''}`;
  }
}

/** The routing part of `status`: where the policy in force comes from, its numbers, aliases and what could not be applied. */
export function routingLines(r: NodeStatus['inference']['routing'] | undefined): string[] {
  if (r === undefined) return [];
  const weights = Object.entries(r.weights).map(([k, v]) => `${k}=${v}`).join(' ');
  const lines = [`routing     ${r.sourceText}  weights ${weights}  battery floor ${r.batteryFloorPct}%  temp ceiling ${r.tempCeilingC} C`];
  if (r.aliases.length > 0) lines.push(`aliases     ${r.aliases.map((a) => `${a.alias} -> ${a.model ?? `(${a.problem ?? 'unresolved'})`}`).join(', ')}`);
  for (const p of r.problems) lines.push(`            not applied: ${p}`);
  return lines;
}

export const statusCommand: Command = {
  name: 'status',
  flags: [],
  positionals: [],
  async run(ctx) {
    const s = await (await ctx.control()).get<NodeStatus>('/status');
    const body = s.adverts.body;
    const lines = [
      `peer id     ${s.peerId}  (${s.name})`,
      `cluster     ${s.cluster}`,
      `version     ${s.version}  pid ${s.pid}  up ${ago(s.uptimeMs)}`,
      `data dir    ${s.dataDir}`,
      `addresses   ${s.addrs.join('\n            ')}`,
      `control     ${s.controlUrl}`,
      `api         ${s.apiUrl ?? '-'}`,
      `members     ${s.members.length}  connected ${s.connectedPeers}`,
      ...meshLines(s.mesh),
      `profile     ${s.adverts.profile ?? '-'}${body?.profilePinned === true ? ' (pinned)' : ''}  advert seq ${s.adverts.seq}`,
      `load        cpu ${num(body?.cpuLoad)}  in-flight ${body?.inFlight ?? 0}/${body?.capacity ?? 0}  queued ${body?.queued ?? 0}`,
      `memory      ${body?.memUsedBytes != null && body.memTotalBytes != null ? `${num(body.memUsedBytes / 2 ** 30, 1)} / ${num(body.memTotalBytes / 2 ** 30, 1)} GiB` : '-'}`,
      `power       ${body?.power.source ?? 'unknown'}${body?.power.batteryPct != null ? ` battery ${body.power.batteryPct}%` : ''}  cpu package ${num(body?.cpuPackageW, 1, ' W')}`,
    ];
    const gpus = body?.gpus ?? [];
    if (gpus.length === 0) lines.push(`gpu         none${s.adverts.gpuReason !== null ? ` (${s.adverts.gpuReason})` : ''}`);
    for (const g of gpus) {
      lines.push(`gpu ${g.index}       ${g.name}  util ${num(g.utilizationPct, 0, '%')}  mem ${num(g.memoryUsedMiB, 0)}/${num(g.memoryTotalMiB, 0)} MiB  ${num(g.temperatureC, 0, ' C')}  ${num(g.powerDrawW, 0)}/${num(g.powerLimitW, 0)} W`);
    }
    const inf = s.inference;
    lines.push(`backends    ${inf.backends.length === 0 ? 'none (this node routes only)' : inf.backends.join(', ')}${Object.keys(inf.backendErrors).length > 0 ? `  errors: ${JSON.stringify(inf.backendErrors)}` : ''}`);
    if (inf.models.length > 0) lines.push(`models      ${inf.models.join(', ')}`);
    lines.push(...routingLines(inf.routing));
    lines.push(...consensusLines(s.consensus));
    for (const [k, v] of Object.entries(s.extensions)) lines.push(`${k.padEnd(11)} ${JSON.stringify(v)}`);
    ctx.result(s, lines.join('\n') + '\n');
    return 0;
  },
};
