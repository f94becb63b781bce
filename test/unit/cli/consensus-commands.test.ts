/**
 * The consensus commands in-process (runCli) against a real control server whose consensus
 * routes sit on the one-node commit double (real registry): human and --json output, rejections
 * and timeouts as exit 1 with the node's code, usage errors as exit 2.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consensusLines } from '../../../cli/commands/status.js';
import { shortId } from '../../../cli/commands/format.js';
import { runCli } from '../../../cli/run.js';
import { identityFromSeed } from '../../../crypto/keys.js';
import type { ControlServer } from '../../../node/control/server.js';
import { startControlServer } from '../../../node/control/server.js';
import { dataDirPaths, writeFileAtomic, writeRuntimeFile } from '../../../node/datadir.js';
import { nullLogger } from '../../../node/log.js';
import { createAdmission } from '../../../node/runtime/admission.js';
import type { Admission } from '../../../node/runtime/admission.js';
import { registerConsensusRoutes } from '../../../node/runtime/consensus-routes.js';
import type { NodeStatus } from '../../../node/runtime/node.js';
import { openStore } from '../../../node/store/index.js';
import type { Store } from '../../../node/store/index.js';
import { consensusDouble } from '../../helpers/consensus-double.js';
import type { Double } from '../../helpers/consensus-double.js';

const self = identityFromSeed(new Uint8Array(32).fill(1));
const other = identityFromSeed(new Uint8Array(32).fill(2));
let dir = '';
let srv: ControlServer;
let store: Store;
let c: Double;
let admission: Admission;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fednode-cmds-'));
  const paths = dataDirPaths(dir);
  const token = 'k'.repeat(43);
  srv = await startControlServer({ host: '127.0.0.1', port: 0, token });
  store = await openStore(join(dir, 'teststore'));
  c = consensusDouble(self, { members: [{ publicKey: self.publicKey, power: 1, name: 'self' }] });
  admission = createAdmission({ cluster: 'fc' + '1'.repeat(24), selfId: self.peerId, selfKey: self.publicKey, mode: 'approve', consensus: c, store, logger: nullLogger, now: Date.now, genesisMember: true });
  await admission.start();
  registerConsensusRoutes(srv, c, admission);
  await writeFileAtomic(paths.controlToken, token + '\n');
  await writeRuntimeFile(paths.runtime, { pid: process.pid, peerId: self.peerId, cluster: null, addrs: [], controlUrl: srv.url, apiUrl: null, startedAt: 0 });
});
afterAll(async () => {
  admission.stop();
  await srv.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli([...argv, '--data-dir', dir], { out: (s) => (out += s), err: (s) => (err += s), env: {} });
  return { code, out, err };
}

describe('fednode propose / patterns / log / approve against a control API', () => {
  it('propose prints the height and the certificate; --json gives the receipt', async () => {
    const r = await cli('propose', 'pattern', '--name', 'greet', '--content', 'Say hello', '--tag', 'demo');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^committed pattern at height 1 \(round 0\)\n/);
    expect(r.out).toContain('certificate    1 signer(s), power 1/1 (quorum > 0)');
    expect(r.out).toContain(`signers        ${self.peerId}`);
    const j = await cli('propose', 'model.alias', 'llama', 'llama3', '--json');
    expect(j.code, j.err).toBe(0);
    expect(JSON.parse(j.out)).toMatchObject({ height: 2, op: { kind: 'model.alias', alias: 'llama', model: 'llama3' }, signers: [self.peerId], power: 1, totalPower: 1 });
  });

  it('route.policy keeps the fields it does not name (read from the registry first)', async () => {
    const r = await cli('propose', 'route.policy', '--battery-floor', '30');
    expect(r.code, r.err).toBe(0);
    expect(c.registry().routePolicy).toEqual({ weights: { latency: 0.5, load: 1, power: 0.25 }, batteryFloorPct: 30, temperatureCeilingC: 85 });
  });

  it('a rejection or a timeout is exit 1 with the node\'s reason and code; bad arguments exit 2', async () => {
    const rej = await cli('propose', 'member.remove', other.peerId);
    expect(rej.code).toBe(1);
    expect(rej.err).toMatch(/^fednode propose: rejected: op 0 \(member.remove\): not a member\n/);
    const rejJson = await cli('propose', 'member.remove', other.peerId, '--json');
    expect(JSON.parse(rejJson.out)).toMatchObject({ error: { code: 'ERR_PATTERN_REJECTED' }, exitCode: 1 });
    c.mode = 'timeout';
    const slow = await cli('propose', 'model.alias', 'x', 'y', '--json', '--wait', '1s');
    c.mode = 'commit';
    expect(slow.code).toBe(1);
    expect(JSON.parse(slow.out)).toMatchObject({ error: { code: 'ERR_SUBMIT_TIMEOUT' } });
    const usage = await cli('propose', 'pattern', '--name', 'x');
    expect(usage.code).toBe(2);
    expect(usage.err).toMatch(/exactly one of --content/);
    expect((await cli('log', '--limit', '0')).code).toBe(2);
    // arguments are checked before the node is asked: exit 2 even with no node on the data dir
    let err = '';
    const code = await runCli(['propose', 'member.add', 'bad!', '--data-dir', join(dir, 'no-node-here')], { out: () => undefined, err: (s) => (err += s), env: {} });
    expect(code).toBe(2);
    expect(err).toMatch(/is not a peer id/);
  });

  it('log shows decided heights with their ops; --from/--limit page it', async () => {
    const all = await cli('log');
    expect(all.code).toBe(0);
    expect(all.out).toMatch(/^decided height 3\nheight 1 {2}round 0 {2}value [0-9a-f]{16} {2}registry [0-9a-f]{16} {2}signers 0\n {2}pattern greet \(9 chars, [0-9a-f]{12}…\) tags demo\n/);
    expect(all.out).toContain('  model.alias llama -> llama3');
    expect(all.out).toContain('  route.policy weights latency=0.5,load=1,power=0.25 battery-floor 30% temp-ceiling 85C');
    const page = JSON.parse((await cli('log', '--from', '2', '--limit', '1', '--json')).out) as { entries: Array<{ height: number }> };
    expect(page.entries.map((e) => e.height)).toEqual([2]);
  });

  it('patterns lists members, policy, aliases, gates and patterns', async () => {
    const p = await cli('patterns');
    expect(p.code).toBe(0);
    expect(p.out).toMatch(new RegExp(`^registry at height 3 {2}hash ${c.status().registryHash}\\n`));
    expect(p.out).toMatch(new RegExp(`${self.peerId}\\s+self\\s+1`));
    expect(p.out).toContain('battery floor 30%');
    expect(p.out).toContain('model aliases  llama -> llama3');
    expect(p.out).toMatch(/greet\s+1\s+1\s+[0-9a-f]{16}\s+demo\s+-\s+"Say hello"/);
    const one = await cli('patterns', '--name', 'greet');
    expect(one.code, one.err).toBe(0);
    expect(one.out).toMatch(/^pattern {3}greet {2}version 1 {2}decided at height 1\nhash {6}[0-9a-f]{64}\ntags {6}demo\nquality {3}-\n\nSay hello\n$/);
    const none = await cli('patterns', '--name', 'nope', '--json');
    expect(none.code).toBe(1);
    expect(JSON.parse(none.out)).toMatchObject({ error: { code: 'ERR_NO_SUCH_PATTERN' } });
  });

  it('approve: lists waiting joins, commits a member.add, refuses a member', async () => {
    expect((await cli('approve')).out).toBe('no joins waiting (admission mode: approve)\n');
    const a = await cli('approve', other.peerId);
    expect(a.code, a.err).toBe(0);
    expect(a.out).toMatch(new RegExp(`^approved ${other.peerId} \\(${other.peerId.slice(-8)}\\): member.add committed at height 4 \\(round 0\\), in force from height 6\\n`));
    const p = await cli('patterns');
    expect(p.out).toContain(`at height 6: member.add ${other.peerId}`);
    const again = await cli('approve', other.peerId);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/already a member/);
  });
});

describe('status: the consensus lines', () => {
  const base = (): NodeStatus['consensus'] => ({
    height: 8, round: 1, step: 'prevote', decidedHeight: 7, registryHash: 'ab'.repeat(32), validators: ['a', 'b', 'c', 'd'], isValidator: true, mempoolOps: 2,
    evidence: [], caughtUpHeights: 0, lastDecidedMs: null, admission: { mode: 'auto', admitted: true, admittedAtHeight: 3, pendingJoins: 0 },
    wire: { direct: 3, withoutChannel: [], gossipFallbacks: 0 },
    storeError: null,
    work: { running: true, cause: 'ops', pendingMembership: [] },
  });
  it('height, registry hash, admission; no evidence line without evidence', () => {
    const l = consensusLines(base());
    expect(l).toEqual([
      'consensus   height 8 round 1 prevote  decided 7  validators 4 (voting)  pending ops 2',
      `registry    ${'ab'.repeat(32)}`,
      'membership  admitted at height 3  admission auto',
      'activity    deciding height 8: pending ops',
      'wire        direct to 3/3 validators',
    ]);
  });
  it('activity says why a height runs, or that the node is idle, with the pending membership changes', () => {
    const peer = '12D3KooWAbCdEfGhIjKlMnOpQrStUvWxYz1234567890abcdef';
    const pendingMembership = [{ kind: 'member.add' as const, peerId: peer, effectiveHeight: 9 }];
    const busy = consensusLines({ ...base(), work: { running: true, cause: 'membership', pendingMembership } });
    expect(busy).toContain(`activity    deciding height 8: bringing membership changes into force (member.add ${shortId(peer)} in force at height 9)`);
    const idle = consensusLines({ ...base(), work: { running: false, cause: null, pendingMembership: [] } });
    expect(idle).toContain('activity    idle: nothing to decide');
  });
  it('validators without a direct channel are named, with the gossip fallbacks so far', () => {
    const peer = '12D3KooWAbCdEfGhIjKlMnOpQrStUvWxYz1234567890abcdef';
    const l = consensusLines({ ...base(), wire: { direct: 2, withoutChannel: [peer], gossipFallbacks: 17 } });
    expect(l.at(-1)).toMatch(/^wire {8}direct to 2\/3 validators; no channel to \S+ \(messages also by gossip, 17 so far\)$/);
    expect(l.at(-1)).toContain(shortId(peer));
    // a decided height that cannot be stored is said first, with the error and the retries
    const stalled = consensusLines({ ...base(), storeError: { height: 8, error: 'IO error: No space left on device', attempts: 3, sinceMs: 0 } });
    expect(stalled[0]).toBe('consensus   HOLDING at height 8: the decided height cannot be stored (IO error: No space left on device); retried 3 time(s)');
    // a single-node cluster has no wire line
    expect(consensusLines({ ...base(), wire: { direct: 0, withoutChannel: [], gossipFallbacks: 0 } }).some((x) => x.startsWith('wire'))).toBe(false);
  });
  it('equivocations are listed with the validator, height, round and vote type; waiting joins and non-admission are said', () => {
    const s = { ...base(), evidence: [{ validator: 'V1', height: 5, round: 0, voteType: 'prevote' }], admission: { mode: 'approve' as const, admitted: false, admittedAtHeight: null, pendingJoins: 2 } };
    const l = consensusLines(s);
    expect(l).toContain('evidence    1 equivocation(s)');
    expect(l).toContain('            V1 signed two prevotes at height 5 round 0');
    expect(l).toContain('membership  not admitted yet (waiting for a committed member.add)  admission approve  2 join(s) waiting for `fednode approve`');
  });
});
