/**
 * Run it as home-lab services run (issue 17): the systemd unit (the committed example equals what
 * `fednode service print` renders with the packaged defaults; systemd-analyze finds nothing wrong
 * with it where it exists), and the Docker files (docker engine is not available on this machine,
 * so what can be checked without one is: the compose file parses, its node's config points at the
 * compose Ollama service and passes fednode's own config validation after prepare-config, the
 * entrypoint is valid sh, the Dockerfile copies only files that exist).
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { renderUnit, UNIT_DEFAULTS } from '../../../cli/commands/service.js';
import { runCli } from '../../../cli/run.js';
import { validateConfig } from '../../../node/config.js';
import { ROOT } from '../../helpers/e2e.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
const tmp = async (): Promise<string> => {
  const d = await mkdtemp(join(tmpdir(), 'fednode-svc-'));
  dirs.push(d);
  return d;
};
const ANALYZE = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => existsSync(p)) ?? null;
if (ANALYZE === null) process.stderr.write('[test/unit/ops/services] systemd-analyze checks SKIPPED: no systemd-analyze on this machine\n');

function analyze(file: string): Promise<string> {
  return new Promise((res) => execFile(ANALYZE!, ['verify', file], (_e, stdout, stderr) => res(`${stdout}${stderr}`.trim())));
}

describe('systemd unit', () => {
  it('the committed contrib unit is what `service print` renders with the packaged defaults, with restart policy, MALLOC_ARENA_MAX, user and hardening', async () => {
    const committed = await readFile(join(ROOT, 'contrib', 'systemd', 'fednode.service'), 'utf8');
    expect(committed).toBe(renderUnit(UNIT_DEFAULTS));
    for (const line of ['Restart=on-failure', 'Environment=MALLOC_ARENA_MAX=2', 'User=fednode', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ReadWritePaths=/var/lib/fednode', 'ExecStart=/usr/bin/node /usr/local/lib/node_modules/fednode/dist/cli/main.js start --data-dir /var/lib/fednode', 'RestartPreventExitStatus=2 3 4 5 7']) {
      expect(committed.split('\n')).toContain(line);
    }
  });

  it('bad `service` arguments are usage errors; paths systemd would misread are refused', async () => {
    let err = '';
    expect(await runCli(['service', 'install'], { out: () => undefined, err: (s) => (err += s), env: {} })).toBe(2);
    expect(err).toContain('"print"');
    expect(await runCli(['service', 'print', '--user', 'Bad User'], { out: () => undefined, err: (s) => (err += s), env: {} })).toBe(2);
    expect(() => renderUnit({ ...UNIT_DEFAULTS, dataDir: '/var/lib/my node' })).toThrow(/systemd would misread it/);
    expect(() => renderUnit({ ...UNIT_DEFAULTS, dataDir: 'relative/dir' })).toThrow(/must be absolute/);
  });

  it.skipIf(ANALYZE === null)('systemd-analyze verify finds nothing wrong with the rendered unit, and does flag a broken one', async () => {
    const d = await tmp();
    const good = join(d, 'fednode.service');
    await writeFile(good, renderUnit({ ...UNIT_DEFAULTS, node: process.execPath, main: join(ROOT, 'cli', 'main.ts') }));
    expect(await analyze(good)).toBe('');
    const bad = join(d, 'broken.service');
    await writeFile(bad, renderUnit(UNIT_DEFAULTS).replace('Restart=on-failure', 'Restart=sometimes'));
    expect(await analyze(bad)).toMatch(/restart specifier/);
  });
});

describe('docker files (no docker engine here: checked without one)', () => {
  const dir = join(ROOT, 'contrib', 'docker');

  it('compose parses; the node beside Ollama, its config pointing at the ollama service; volumes and ports declared', async () => {
    const compose = parse(await readFile(join(dir, 'compose.yaml'), 'utf8')) as { services: Record<string, { image?: string; build?: { dockerfile: string }; volumes?: string[]; environment?: Record<string, string>; depends_on?: string[] }> };
    expect(Object.keys(compose.services).sort()).toEqual(['fednode', 'ollama']);
    expect(compose.services['ollama']!.image).toMatch(/^ollama\/ollama/);
    const node = compose.services['fednode']!;
    expect(node.depends_on).toContain('ollama');
    expect(node.build?.dockerfile).toBe('contrib/docker/Dockerfile');
    expect(node.volumes).toContain('./config.json:/etc/fednode/config.json:ro');
    expect(node.environment?.['FEDNODE_API_KEY']).toContain(':?');
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { backends: Array<{ kind: string; baseUrl: string }> };
    const ollama = new URL(config.backends[0]!.baseUrl);
    expect(config.backends[0]!.kind).toBe('ollama');
    expect(ollama.hostname).toBe('ollama'); // the compose service name
    expect(ollama.port).toBe('11434'); // Ollama's port
  });

  it('prepare-config lays the mounted config over the node\'s with the key from the environment; refuses a LAN API without one', async () => {
    const d = await tmp();
    const own = join(d, 'config.json');
    await writeFile(own, JSON.stringify({ name: 'joined-name', bootstrap: ['/ip4/10.0.0.2/tcp/4701/p2p/12D3KooWabc'], listen: ['/ip4/127.0.0.1/tcp/0'] }));
    const run = (env: Record<string, string>): Promise<{ code: number; stderr: string }> =>
      new Promise((res) => execFile(process.execPath, [join(dir, 'prepare-config.mjs'), join(dir, 'config.json'), own], { env: { PATH: process.env['PATH'] ?? '', ...env } }, (e, _o, stderr) => res({ code: e === null ? 0 : ((e as { code?: number }).code ?? 1), stderr })));
    const noKey = await run({});
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toContain('FEDNODE_API_KEY');
    expect((await run({ FEDNODE_API_KEY: 'short' })).code).toBe(1);
    expect(await run({ FEDNODE_API_KEY: 'k'.repeat(32) })).toMatchObject({ code: 0 });
    const merged = JSON.parse(await readFile(own, 'utf8')) as Record<string, unknown>;
    const valid = validateConfig(merged, own); // fednode's own validation: the node will start with it
    expect(valid.api).toMatchObject({ host: '0.0.0.0', port: 7411, apiKey: 'k'.repeat(32) });
    expect(valid.name).toBe('joined-name');
    expect(valid.bootstrap).toEqual(['/ip4/10.0.0.2/tcp/4701/p2p/12D3KooWabc']);
    expect(valid.listen).toEqual(['/ip4/0.0.0.0/tcp/4701']);
  });

  it('the entrypoint is valid sh and the Dockerfile copies files that exist', async () => {
    execFileSync('sh', ['-n', join(dir, 'entrypoint.sh')]);
    const df = await readFile(join(dir, 'Dockerfile'), 'utf8');
    for (const m of df.matchAll(/^COPY (?!--from)(.+)$/gm)) {
      const parts = m[1]!.trim().split(/\s+/);
      for (const src of parts.slice(0, -1)) if (src !== '.') expect(existsSync(join(ROOT, src)), src).toBe(true);
    }
    expect(df).toContain('MALLOC_ARENA_MAX=2');
    expect(df).toMatch(/^USER fednode$/m);
  });
});
