/**
 * Diagnoses that name the fix (issue 17), with real `fednode` processes on 127.0.0.1:
 * - a node of another cluster (another swarm.key) dialling a member: both count the failed
 *   cluster key check, and `doctor` says "N connection attempts failed the cluster key check:
 *   this node or that peer has a different swarm.key";
 * - a joiner presenting an invite already used, and one whose invite expired before its claim
 *   arrived: the member logs the refusal at info, the joiner's `status` says why it is not
 *   admitted, its `doctor` fails the join claim check; `invite` on it exits non-zero with the reason;
 * - `doctor` on a running member checks its backend with a 1-token chat and the API's bind.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Running } from '../../helpers/e2e.js';
import { control, fednode, spawnUntil, waitFor } from '../../helpers/e2e.js';

const FLAGS = ['--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--api-port', '0', '--advert-period', '300ms', '--simulated-model', 'simulated-7b', '--simulated-tps', '0'];
const running: Running[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

interface Check {
  name: string;
  status: string;
  detail: string;
  fix: string | null;
}
async function doctor(dir: string): Promise<{ code: number; checks: Check[] }> {
  const r = await fednode(['doctor', '--json', '--data-dir', dir]);
  return { code: r.code, checks: (JSON.parse(r.stdout) as { checks: Check[] }).checks };
}
async function start(dir: string): Promise<Running> {
  const r = await spawnUntil(['start', '--json', '--data-dir', dir], 'ready');
  running.push(r);
  return r;
}
const addrOf = (r: Running): string => (r.ready['addrs'] as string[])[0]!;

describe('diagnoses that name the fix (real processes)', () => {
  it('a different swarm.key is counted and doctor names it; doctor checks the backend with a 1-token chat and the API bind', async () => {
    const base = await mkdtemp(join(tmpdir(), 'fednode-diag-'));
    dirs.push(base);
    const a = join(base, 'a');
    const x = join(base, 'x');
    expect((await fednode(['init', '--new-cluster', '--data-dir', a, '--name', 'a', ...FLAGS])).code).toBe(0);
    const na = await start(a);
    // x founds ANOTHER cluster (its own swarm.key) and is told to dial a
    expect((await fednode(['init', '--new-cluster', '--data-dir', x, '--name', 'x', ...FLAGS, '--bootstrap', addrOf(na)])).code).toBe(0);
    await start(x);
    await waitFor('a to count a failed cluster key check', async () => ((await control<{ pnet: { failures: number } }>(a, '/diagnostics')).pnet.failures > 0 ? true : undefined));

    const d = await doctor(a);
    const key = d.checks.find((c) => c.name === 'cluster key');
    expect(key?.status).toBe('fail');
    expect(key?.detail).toMatch(/^\d+ connection attempts failed the cluster key check: this node or that peer has a different swarm\.key/);
    expect(key?.detail).toContain('127.0.0.1');
    expect(key?.fix).toContain('swarm.key');
    expect(d.code).toBe(1);
    // the dialling side counts them too
    expect((await control<{ pnet: { failures: number } }>(x, '/diagnostics')).pnet.failures).toBeGreaterThan(0);
    // the member logged it (rate-limited: one line per minute)
    expect(na.stderr().match(/different swarm\.key/g)?.length).toBe(1);

    // backends and API on the same doctor run
    const be = d.checks.find((c) => c.name === 'backend simulated');
    expect(be?.status).toBe('ok');
    expect(be?.detail).toMatch(/1 model\(s\) \(simulated-7b\); 1-token chat with simulated-7b answered in \d+ ms \(1 token\)/);
    expect(d.checks.find((c) => c.name === 'api bind')).toMatchObject({ status: 'ok', detail: expect.stringContaining('loopback only (no key needed)') });
    expect(d.checks.find((c) => c.name === 'api')).toMatchObject({ status: 'ok', detail: expect.stringContaining('answers /healthz') });
  }, 120_000);

  it('used and expired invites: the member logs the refusal, the joiner\'s status and doctor say why; invite on a non-member exits non-zero', async () => {
    const base = await mkdtemp(join(tmpdir(), 'fednode-diag-'));
    dirs.push(base);
    const [a, b, c, e] = ['a', 'b', 'c', 'e'].map((n) => join(base, n)) as [string, string, string, string];
    expect((await fednode(['init', '--new-cluster', '--data-dir', a, '--name', 'a', ...FLAGS])).code).toBe(0);
    const na = await start(a);
    const inv = JSON.parse((await fednode(['invite', '--json', '--ttl', '10m', '--data-dir', a])).stdout) as { token: string };
    // b uses the invite and is admitted
    expect((await fednode(['join', inv.token, '--data-dir', b, '--name', 'b', ...FLAGS])).code).toBe(0);
    await start(b);
    await waitFor('b admitted', async () => ((await control<{ consensus: { admission: { admitted: boolean } } }>(b, '/status')).consensus.admission.admitted ? true : undefined), 30_000);
    // c presents the same invite
    expect((await fednode(['join', inv.token, '--data-dir', c, '--name', 'c', ...FLAGS])).code).toBe(0);
    await start(c);
    const refused = await waitFor(
      'c told why it is refused',
      async () => (await control<{ consensus: { admission: { refused?: { code: string; reason: string; byPeer: string } | null } } }>(c, '/status')).consensus.admission.refused ?? undefined,
      30_000,
    );
    expect(refused.code).toBe('ERR_INVITE_USED');
    const st = await fednode(['status', '--data-dir', c]);
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(/NOT ADMITTED: member \S+ refused the join claim: invite already used.*\(ERR_INVITE_USED\); ask a member for a new invite/);
    const dc = await doctor(c);
    expect(dc.checks.find((x) => x.name === 'join claim')).toMatchObject({ status: 'fail', detail: expect.stringContaining('invite already used'), fix: expect.stringContaining('new invite') });
    // the member logged it at info, once
    const refusedLines = na.stderr().split('\n').filter((l) => l.includes('join claim refused') && l.includes('ERR_INVITE_USED'));
    expect(refusedLines.length).toBe(1);
    expect(JSON.parse(refusedLines[0]!)).toMatchObject({ level: 'info' });
    // c is no member: its invite would be refused by everyone, so it is refused at once
    const ic = await fednode(['invite', '--data-dir', c]);
    expect(ic.code).not.toBe(0);
    expect(ic.stderr).toMatch(/not a member of the cluster/);

    // an invite that expires before the joiner's claim arrives (long enough for `join`, which
    // refuses an expired token itself, to run on a loaded machine)
    const short = JSON.parse((await fednode(['invite', '--json', '--ttl', '10s', '--data-dir', a])).stdout) as { token: string; expiresMs: number };
    expect((await fednode(['join', short.token, '--data-dir', e, '--name', 'e', ...FLAGS])).code).toBe(0);
    await waitFor('the invite to expire', () => Promise.resolve(Date.now() > short.expiresMs + 200 ? true : undefined), 20_000);
    await start(e);
    const expired = await waitFor('e told its invite expired', async () => (await control<{ consensus: { admission: { refused?: { code: string } | null } } }>(e, '/status')).consensus.admission.refused ?? undefined, 30_000);
    expect(expired.code).toBe('ERR_INVITE_EXPIRED');
    expect((await fednode(['status', '--data-dir', e])).stdout).toMatch(/NOT ADMITTED: .*invite expired at/);
    expect(na.stderr()).toMatch(/"msg":"join claim refused".*ERR_INVITE_EXPIRED/);
  }, 150_000);
});
