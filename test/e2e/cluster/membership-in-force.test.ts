/**
 * #11 item 6: membership comes into force by itself. `fednode cluster --nodes 3` with no
 * proposal: the joiners' member.adds are decided, then the driver decides the empty heights that
 * bring them into force (H+1, H+2) and nothing more; an idle cluster decides no height.
 * Real processes on 127.0.0.1 (the CLI's own cluster command).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ConsensusStatus } from '../../../node/consensus/api.js';
import type { EntryJson } from '../../../node/runtime/consensus-ops.js';
import type { PatternsJson } from '../../../node/runtime/consensus-routes.js';
import type { Running } from '../../helpers/e2e.js';
import { control, spawnUntil, waitFor } from '../../helpers/e2e.js';

const running: Running[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** The observation window the issue names for "an idle cluster decides nothing". */
const IDLE_WINDOW_MS = 30_000;
const POLL_MS = 1_000;

describe('membership comes into force without proposals (real processes)', () => {
  it('3 nodes: every member in force within 2 heights of the last join; then idle, no height decided in 30 s', async () => {
    const base = await mkdtemp(join(tmpdir(), 'fednode-e2e-inforce-'));
    dirs.push(base);
    const cl = await spawnUntil(['cluster', '--nodes', '3', '--json', '--dir', base], 'cluster-ready', 90_000);
    running.push(cl);
    const nodes = cl.ready['nodes'] as Array<{ name: string; peerId: string; dataDir: string }>;
    const ids = nodes.map((n) => n.peerId).sort();

    // Every node's decided registry lists all 3 as members, with nothing pending.
    for (const n of nodes) {
      await waitFor(
        `${n.name}: 3 members in force, nothing pending`,
        async () => {
          const p = await control<PatternsJson>(n.dataDir, '/consensus/patterns');
          return p.registry.pending.length === 0 && p.registry.members.map((m) => m.peer).sort().join() === ids.join() ? true : undefined;
        },
        60_000,
        250,
      );
    }
    // ... and settles idle (no height running, nothing pending), all at the same decided height.
    const settled = await Promise.all(
      nodes.map((n) =>
        waitFor(`${n.name} idle`, async () => {
          const s = await control<ConsensusStatus>(n.dataDir, '/consensus/status');
          return !s.work.running && s.work.cause === null && s.work.pendingMembership.length === 0 && s.mempoolOps === 0 ? s : undefined;
        }, 30_000, 250),
      ),
    );
    const decided = settled[0]!.decidedHeight;
    expect(settled.map((s) => s.decidedHeight)).toEqual([decided, decided, decided]);
    expect(new Set(settled.map((s) => s.registryHash)).size).toBe(1);
    expect(settled[0]!.validators.slice().sort()).toEqual(ids);

    // The log: the last height with a member.add, then exactly the two empty heights that bring it in.
    const log = await control<{ decidedHeight: number; entries: EntryJson[] }>(nodes[0]!.dataDir, '/consensus/log?from=1&limit=100');
    expect(log.entries.map((e) => e.height)).toEqual(Array.from({ length: decided }, (_, i) => i + 1));
    const joins = log.entries.filter((e) => e.ops.some((op) => op.kind === 'member.add'));
    const added = joins.flatMap((e) => e.ops.flatMap((op) => (op.kind === 'member.add' ? [op.peer] : [])));
    expect(added.sort()).toEqual(ids.filter((id) => id !== nodes[0]!.peerId).sort());
    const lastJoin = joins.at(-1)!.height;
    expect(decided).toBe(lastJoin + 2);
    expect(log.entries.filter((e) => e.height > lastJoin).map((e) => e.ops)).toEqual([[], []]);

    // Idle: over the window every poll of every node shows it idle at the same decided height.
    let polls = 0;
    for (const end = Date.now() + IDLE_WINDOW_MS; Date.now() < end; ) {
      for (const n of nodes) {
        const s = await control<ConsensusStatus>(n.dataDir, '/consensus/status');
        expect({ node: n.name, decided: s.decidedHeight, running: s.work.running }).toEqual({ node: n.name, decided, running: false });
        polls++;
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    expect(polls).toBeGreaterThanOrEqual(3 * 10); // the window was really observed (>= 10 rounds of polls)

    cl.child.kill('SIGINT');
    expect((await cl.exited).code, cl.stderr().slice(-2000)).toBe(0);
  }, 240_000);
});
