/**
 * The CLI's side of the control API: finds the running node through
 * `<data dir>/runtime.json` and `control.token`, and calls it.
 *
 * Written on node:http rather than fetch: undici's fetch never settles when the server
 * accepts and then drops the connection (seen with a peer holding the control port), and
 * its timeout signal is unref'd, so the CLI process used to exit 0 with no output. Here
 * every outcome settles the call: an answer, a refused connection (no node), a cut
 * connection, a timeout (a ref'd timer), or an oversize answer; each is its own error code.
 * node:http also keeps undici off the start-up path of `status` (issue #15).
 */
import { request, type IncomingMessage } from 'node:http';
import type { DataDirPaths } from '../datadir-files.js';
import { checkInitialised, readControlToken, readRuntimeFile } from '../datadir-files.js';
import { RuntimeError } from '../runtime/errors.js';
import { errnoCode } from '../../base/errors.js';

export interface ControlClient {
  readonly url: string;
  get<T = unknown>(path: string, opts?: { timeoutMs?: number }): Promise<T>;
  post<T = unknown>(path: string, body?: unknown, opts?: { timeoutMs?: number }): Promise<T>;
}

/** Control calls answer from memory; 10 s covers a loaded machine. Long commands pass their own. */
export const CONTROL_TIMEOUT_MS_DEFAULT = 10_000;
/** Bound on one answer held in memory: the largest is a `log` page (LOG_LIMIT_MAX entries), well under this. */
export const CONTROL_RESPONSE_MAX_BYTES = 32 * 1024 * 1024;

/** Connection errors that mean nothing listens there: the node is not running. */
const NOT_RUNNING_ERRNO = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND']);

interface RawAnswer {
  status: number;
  text: string;
}

function send(url: string, method: string, path: string, headers: Record<string, string>, body: string | undefined, timeoutMs: number): Promise<RawAnswer> {
  return new Promise<RawAnswer>((resolve, reject) => {
    let settled = false;
    const finish = (err: RuntimeError | null, answer?: RawAnswer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err !== null) {
        req.destroy();
        reject(err);
      } else resolve(answer as RawAnswer);
    };
    const cut = (cause?: unknown): RuntimeError =>
      new RuntimeError('ERR_CONTROL_CUT', `the connection to the node at ${url} was closed before it answered ${method} ${path} (is something holding the control port, or did the node stop?)`, { url, path }, cause !== undefined ? { cause } : undefined);
    // A ref'd timer: the process stays alive until the call settles one way or another.
    const timer = setTimeout(() => finish(new RuntimeError('ERR_CONTROL_TIMEOUT', `the node at ${url} did not answer ${method} ${path} within ${timeoutMs} ms`, { url, path, timeoutMs })), timeoutMs);
    const req = request(url + path, { method, headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) }, agent: false }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > CONTROL_RESPONSE_MAX_BYTES) finish(new RuntimeError('ERR_CONTROL_OVERSIZE', `the node at ${url} answered ${method} ${path} with more than ${CONTROL_RESPONSE_MAX_BYTES} bytes`, { url, path }));
        else chunks.push(c);
      });
      res.on('end', () => finish(null, { status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('aborted', () => finish(cut()));
      res.on('error', (e) => finish(cut(e)));
      res.on('close', () => {
        if (!res.complete) finish(cut());
      });
    });
    req.on('error', (e) => {
      const code = errnoCode(e);
      if (code !== undefined && NOT_RUNNING_ERRNO.has(code)) {
        finish(new RuntimeError('ERR_NODE_NOT_RUNNING', `no fednode answers at ${url} (is \`fednode start\` running on this data directory?)`, { url }, { cause: e }));
      } else finish(cut(e));
    });
    req.end(body);
  });
}

export function controlClient(url: string, token: string): ControlClient {
  const call = async <T>(method: string, path: string, body: unknown, timeoutMs: number): Promise<T> => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await send(url, method, path, headers, body !== undefined ? JSON.stringify(body) : undefined, timeoutMs);
    let json: unknown;
    try {
      json = JSON.parse(res.text) as unknown;
    } catch {
      throw new RuntimeError('ERR_CONTROL_HTTP', `control API ${method} ${path}: HTTP ${res.status}, not JSON`, { status: res.status });
    }
    if (res.status === 401) throw new RuntimeError('ERR_CONTROL_UNAUTHORIZED', `control API refused the token (${url}); does control.token belong to this node?`, { url });
    if (res.status < 200 || res.status > 299) {
      const err = (json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      throw new RuntimeError('ERR_CONTROL_HTTP', `control API ${method} ${path}: ${typeof err?.message === 'string' ? err.message : `HTTP ${res.status}`}`, { status: res.status, code: err?.code });
    }
    return json as T;
  };
  return {
    url,
    get: (path, o) => call('GET', path, undefined, o?.timeoutMs ?? CONTROL_TIMEOUT_MS_DEFAULT),
    post: (path, body, o) => call('POST', path, body ?? {}, o?.timeoutMs ?? CONTROL_TIMEOUT_MS_DEFAULT),
  };
}

/** A client for the node running on this data directory; ERR_DATADIR_* when there is no node there at all, else ERR_NODE_NOT_RUNNING. */
export async function connectControl(paths: DataDirPaths): Promise<ControlClient> {
  const rt = await readRuntimeFile(paths.runtime);
  // A missing or uninitialised directory is exit 3 with what to run, not "no node running".
  if (rt === null) await checkInitialised(paths.root);
  if (rt === null) throw new RuntimeError('ERR_NODE_NOT_RUNNING', `no fednode is running on ${paths.root} (start one with \`fednode start --data-dir ${paths.root}\`)`, { dir: paths.root });
  const token = await readControlToken(paths.controlToken);
  return controlClient(rt.controlUrl, token);
}
