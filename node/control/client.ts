/**
 * The CLI's side of the control API: finds the running node through
 * `<data dir>/runtime.json` and `control.token`, and calls it.
 */
import type { DataDirPaths } from '../datadir.js';
import { readControlToken, readRuntimeFile } from '../datadir.js';
import { RuntimeError } from '../runtime/errors.js';

export interface ControlClient {
  readonly url: string;
  get<T = unknown>(path: string, opts?: { timeoutMs?: number }): Promise<T>;
  post<T = unknown>(path: string, body?: unknown, opts?: { timeoutMs?: number }): Promise<T>;
}

/** Control calls answer from memory; 10 s covers a loaded machine. Long commands pass their own. */
export const CONTROL_TIMEOUT_MS_DEFAULT = 10_000;

export function controlClient(url: string, token: string): ControlClient {
  const call = async <T>(method: string, path: string, body: unknown, timeoutMs: number): Promise<T> => {
    let res: Response;
    try {
      res = await fetch(url + path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      throw new RuntimeError('ERR_NODE_NOT_RUNNING', `no fednode answers at ${url} (is \`fednode start\` running on this data directory?)`, { url }, { cause: e });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text) as unknown;
    } catch {
      throw new RuntimeError('ERR_CONTROL_HTTP', `control API ${method} ${path}: HTTP ${res.status}, not JSON`, { status: res.status });
    }
    if (res.status === 401) throw new RuntimeError('ERR_CONTROL_UNAUTHORIZED', `control API refused the token (${url}); does control.token belong to this node?`, { url });
    if (!res.ok) {
      const err = (json as { error?: { code?: unknown; message?: unknown } }).error;
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

/** A client for the node running on this data directory, or ERR_NODE_NOT_RUNNING. */
export async function connectControl(paths: DataDirPaths): Promise<ControlClient> {
  const rt = await readRuntimeFile(paths.runtime);
  if (rt === null) throw new RuntimeError('ERR_NODE_NOT_RUNNING', `no fednode is running on ${paths.root} (start one with \`fednode start --data-dir ${paths.root}\`)`, { dir: paths.root });
  const token = await readControlToken(paths.controlToken);
  return controlClient(rt.controlUrl, token);
}
