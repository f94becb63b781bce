/**
 * The dashboard in a real browser (issue 17): headless Debian Chromium driven by
 * playwright-core against a real 3-node cluster (`fednode cluster`, real processes on
 * 127.0.0.1). The page lists all three nodes, updates when load arrives (over its event
 * stream, no reload), and shows a killed node turn stale, then gone. A screenshot is saved
 * as the test's artefact (test-results/dashboard.png).
 *
 * Skipped, with the reason printed, only where no Chromium binary exists (`.ci/run` installs it).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import type { Running } from '../../helpers/e2e.js';
import { ROOT, spawnUntil } from '../../helpers/e2e.js';

const CHROMIUM = process.env['FEDNODE_CHROMIUM'] ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
if (!HAVE_CHROMIUM) process.stderr.write(`[test/e2e/dashboard] SKIPPED: no Chromium at ${CHROMIUM} (apt-get install chromium, or set FEDNODE_CHROMIUM)\n`);
export const ARTEFACTS = join(ROOT, 'test-results');

interface ClusterReady {
  nodes: Array<{ name: string; peerId: string; api: string; pid: number; dataDir: string }>;
}

const cleanup: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
});

async function rowState(page: Page, peerId: string): Promise<string | null> {
  return page.getAttribute(`#members tr[data-peer="${peerId}"]`, 'data-state');
}

/** Wait until the member's row shows `state` (the page re-renders on every pushed snapshot). */
async function waitState(page: Page, peerId: string, state: string, timeout = 30_000): Promise<void> {
  await page.locator(`#members tr[data-peer="${peerId}"][data-state="${state}"]`).waitFor({ timeout });
}

describe.skipIf(!HAVE_CHROMIUM)('dashboard in headless Chromium against 3 real nodes', () => {
  it('lists the three nodes, updates under load, shows a killed node stale then gone; screenshot saved', async () => {
    const base = await mkdtemp(join(tmpdir(), 'fednode-dash-'));
    cleanup.push(() => rm(base, { recursive: true, force: true }));
    // 300 ms adverts: stale after 3 periods (0.9 s), gone after 10 (3 s).
    const cluster: Running = await spawnUntil(['cluster', '--nodes', '3', '--json', '--dir', join(base, 'c'), '--advert-period', '300ms'], 'cluster-ready', 90_000);
    cleanup.push(async () => {
      if (cluster.child.exitCode === null) {
        cluster.child.kill('SIGTERM');
        await cluster.exited;
      }
    });
    const nodes = (cluster.ready as unknown as ClusterReady).nodes;
    expect(nodes.map((n) => n.name)).toEqual(['node-1', 'node-2', 'node-3']);
    const [n1, , n3] = nodes as [ClusterReady['nodes'][number], ClusterReady['nodes'][number], ClusterReady['nodes'][number]];

    const { chromium } = await import('playwright-core');
    const profile = await mkdtemp(join(tmpdir(), 'fednode-chromium-'));
    cleanup.push(() => rm(profile, { recursive: true, force: true }));
    const browser: BrowserContext = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1500, height: 950 },
    });
    cleanup.push(() => browser.close());
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${n1.api}/dashboard/`);

    // 1. all three members, live (joiners' adverts arrive within a period)
    for (const n of nodes) {
      await waitState(page, n.peerId, 'live');
      expect(await page.getAttribute(`#members tr[data-peer="${n.peerId}"]`, 'data-name')).toBe(n.name);
    }
    expect(await page.locator('#members tbody tr').count()).toBe(3);
    await page.locator('#conn[data-conn="live"]').waitFor();
    expect(await page.textContent('#total-requests')).toBe('0');

    // 2. load arrives: 9 chat requests through node-1; the page (its event stream, no reload) counts them and names who served
    const chats = await Promise.all(
      Array.from({ length: 9 }, (_, i) =>
        fetch(`${n1.api}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'simulated-7b', messages: [{ role: 'user', content: `hello ${i}` }], max_tokens: 40 }) }).then(async (r) => {
          expect(r.status).toBe(200);
          return (await r.json()) as { fednode: { served_by: string } };
        }),
      ),
    );
    const servers = new Set(chats.map((c) => c.fednode.served_by));
    await page.locator('#total-requests', { hasText: /^9$/ }).waitFor({ timeout: 15_000 });
    expect(await page.locator('#decisions tbody tr').count()).toBe(9);
    // every serving node shows a request rate above zero in its row
    for (const id of servers) {
      const rate = Number(await page.textContent(`#members tr[data-peer="${id}"] td.reqps`));
      expect(rate, `req/s shown for ${id}`).toBeGreaterThan(0);
    }
    await mkdir(ARTEFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTEFACTS, 'dashboard.png'), fullPage: true });

    // 3. kill -9 node-3: stale, then gone, on the open page
    process.kill(n3.pid, 'SIGKILL');
    await waitState(page, n3.peerId, 'stale', 20_000);
    await waitState(page, n3.peerId, 'gone', 20_000);
    expect(await rowState(page, n1.peerId)).toBe('live');
    await page.screenshot({ path: join(ARTEFACTS, 'dashboard-node-gone.png'), fullPage: true });
    expect((await readFile(join(ARTEFACTS, 'dashboard.png'))).subarray(1, 4).toString()).toBe('PNG');
    expect(pageErrors).toEqual([]);
  }, 180_000);
});
