/**
 * `doctor`'s operator checks (issue 17), each naming its fix: every configured backend
 * (reachable, its models, a 1-token chat), the inference API's bind and key, connections that
 * failed the cluster key check, and a joiner's refused claim.
 */
import type { FednodeConfig } from '../../node/config.js';
import type { ControlClient } from '../../node/control/client.js';
import type { CheckStatus } from './doctor.js';

type Add = (name: string, status: CheckStatus, detail: string, fix?: string | null) => void;

/** A backend that cannot list its models in 5 s is not reachable for routing purposes either. */
const BACKEND_LIST_TIMEOUT_MS = 5_000;
/** A 1-token answer from a loaded model takes well under a second; 30 s covers loading one from disk. */
const BACKEND_CHAT_TIMEOUT_MS = 30_000;
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

function errMsg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Each backend of the config: list models, then a 1-token chat with the first. */
export async function backendChecks(config: FednodeConfig, configFile: string, add: Add): Promise<void> {
  if (config.backends.length === 0) {
    add('backends', 'skip', 'none configured: this node routes to members and serves nothing itself');
    return;
  }
  const { createBackend } = await import('../../node/backends/index.js'); // lazy: light CLI start-up
  for (const [i, entry] of config.backends.entries()) {
    let backend;
    try {
      backend = createBackend(entry as unknown as Parameters<typeof createBackend>[0]);
    } catch (e) {
      add(`backend ${i}`, 'fail', `backends[${i}] is invalid: ${errMsg(e)}`, `fix backends[${i}] in ${configFile}`);
      continue;
    }
    const name = `backend ${backend.id}`;
    const where = 'baseUrl' in entry && typeof entry['baseUrl'] === 'string' ? ` at ${entry['baseUrl']}` : '';
    let models: string[];
    try {
      models = (await backend.models(AbortSignal.timeout(BACKEND_LIST_TIMEOUT_MS))).map((m) => m.id);
    } catch (e) {
      add(name, 'fail', `${backend.kind}${where} is not reachable: ${errMsg(e)}`, backend.kind === 'ollama' ? `start Ollama (\`ollama serve\`) or fix backends[${i}].baseUrl in ${configFile}` : `start the server or fix backends[${i}].baseUrl in ${configFile}`);
      continue;
    }
    const model = models[0];
    if (model === undefined) {
      add(name, 'warn', `${backend.kind}${where} answers but serves no model`, backend.kind === 'ollama' ? 'pull one: `ollama pull <model>`' : 'load a model in that server');
      continue;
    }
    const t0 = Date.now();
    try {
      let tokens = 0;
      for await (const c of backend.chat({ model, messages: [{ role: 'user', content: 'Hi' }], maxTokens: 1 }, AbortSignal.timeout(BACKEND_CHAT_TIMEOUT_MS))) {
        if (c.type === 'done') tokens = c.usage.completionTokens;
      }
      add(name, 'ok', `${backend.kind}${where}: ${models.length} model(s) (${models.slice(0, 5).join(', ')}${models.length > 5 ? ', ...' : ''}); 1-token chat with ${model} answered in ${Date.now() - t0} ms (${tokens} token)`);
    } catch (e) {
      add(name, 'fail', `${backend.kind}${where} lists ${models.length} model(s) but a 1-token chat with ${model} failed: ${errMsg(e)}`, 'check the server\'s log: the model may not load (memory, a broken file) or the server may not speak this API');
    }
  }
}

/** The inference API's bind address and key; with a running node, that the key is enforced. */
export async function apiChecks(config: FednodeConfig, configFile: string, apiUrl: string | null, add: Add): Promise<void> {
  const a = config.api;
  if (!a.enabled) {
    add('api', 'skip', 'inference API disabled (api.enabled false): no OpenAI endpoint and no dashboard on this node');
    return;
  }
  const loopback = LOOPBACK.has(a.host);
  // (beyond loopback without a key is refused by the config itself: the `config` check names it)
  if (loopback) add('api bind', 'ok', `${a.host}:${a.port === 0 ? '(free port)' : a.port}, loopback only${a.apiKey === null ? ' (no key needed)' : ' (key set)'}`);
  else add('api bind', 'ok', `${a.host}:${a.port === 0 ? '(free port)' : a.port}, reachable beyond loopback with the API key`);
  if (apiUrl === null) return;
  try {
    const health = await fetch(`${apiUrl}/healthz`, { signal: AbortSignal.timeout(BACKEND_LIST_TIMEOUT_MS) });
    if (!health.ok) throw new RangeError(`HTTP ${health.status}`);
    if (a.apiKey !== null) {
      const anonymous = await fetch(`${apiUrl}/v1/models`, { signal: AbortSignal.timeout(BACKEND_LIST_TIMEOUT_MS) });
      await anonymous.arrayBuffer();
      if (anonymous.status !== 401) {
        add('api key', 'fail', `${apiUrl}/v1/models answered ${anonymous.status} without the key (expected 401)`, 'restart the node so it loads api.apiKey from the config');
        return;
      }
      const keyed = await fetch(`${apiUrl}/v1/models`, { headers: { authorization: `Bearer ${a.apiKey}` }, signal: AbortSignal.timeout(BACKEND_LIST_TIMEOUT_MS) });
      await keyed.arrayBuffer();
      if (keyed.status !== 200) add('api key', 'fail', `${apiUrl}/v1/models refuses the configured key (HTTP ${keyed.status})`, `the running node was started with another key: restart it after editing ${configFile}`);
      else add('api key', 'ok', `${apiUrl}: refused without the key (401), answered with it`);
    } else {
      add('api', 'ok', `${apiUrl} answers /healthz`);
    }
  } catch (e) {
    add('api', 'fail', `${apiUrl} does not answer: ${errMsg(e)}`, 'is another process on the port? see the node\'s log');
  }
}

export interface DiagnosticsReply {
  pnet: { failures: number; lastAtMs: number | null; recent: Array<{ remoteAddr: string; error: string; atMs: number }> } | null;
}

/** Connections that failed the cluster key check, as the running node counted them. */
export async function pnetCheck(client: ControlClient, add: Add, timeoutMs: number): Promise<void> {
  let d: DiagnosticsReply;
  try {
    d = await client.get<DiagnosticsReply>('/diagnostics', { timeoutMs });
  } catch (e) {
    add('cluster key', 'skip', `the node does not report key failures (${errMsg(e)})`);
    return;
  }
  const p = d.pnet;
  if (p === null) return;
  if (p.failures === 0) {
    add('cluster key', 'ok', 'no connection attempt failed the cluster key check');
    return;
  }
  const from = [...new Set(p.recent.map((r) => r.remoteAddr.replace(/\/tcp\/\d+.*$/, '')))].join(', ');
  add(
    'cluster key',
    'fail',
    `${p.failures} connection attempts failed the cluster key check: this node or that peer has a different swarm.key (last ${p.lastAtMs === null ? '?' : new Date(p.lastAtMs).toISOString()}, from ${from || 'unknown'})`,
    'copy swarm.key from a member of the cluster into the data directory of the node that differs (mode 0600) and restart it, or re-join that node with a fresh invite (`fednode invite` on a member, `fednode join <token>`)',
  );
}

/** A joiner's refused claim, as the members reported it back. */
export function admissionRefusedCheck(refused: { reason: string; code: string; byPeer: string; atMs: number } | null | undefined, add: Add): void {
  if (refused === null || refused === undefined) return;
  add('join claim', 'fail', `member ${refused.byPeer} refused this node's join claim: ${refused.reason} (${refused.code})`, 'ask a member for a new invite (`fednode invite`), then `fednode join <token> --data-dir <new dir>`; an invite works once and expires');
}
