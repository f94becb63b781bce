/**
 * The operator's config file (`<data dir>/config.json`). Every field is optional
 * in the file and has a default; unknown fields are rejected with their path so a
 * typo never silently does nothing. `CONFIG_FIELDS` documents each field with its
 * default and why (printed by `fednode help config`).
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { RuntimeError } from './runtime/errors.js';
import { errnoCode } from '../base/errors.js';

/** A multiaddr as text; full parsing happens in node/p2p (this is a cheap shape check). */
const multiaddrText = z
  .string()
  .max(512) // a multiaddr with a /p2p/ suffix is ~100 chars; 512 bounds a pasted mistake
  .regex(/^\/(ip4|ip6|dns|dns4|dns6)\/[^/]+\/tcp\/\d+(\/.*)?$/, 'expected a TCP multiaddr such as /ip4/192.168.1.5/tcp/4701');

const port = z.number().int().min(0).max(65535);
const loopbackHosts = new Set(['127.0.0.1', '::1', 'localhost']);

export const powerProfiles = ['eco', 'balanced', 'boost', 'turbo'] as const;
/** How a member treats a valid join claim: propose member.add at once, or wait for `fednode approve`. */
export const admissionModes = ['auto', 'approve'] as const;
export type AdmissionMode = (typeof admissionModes)[number];

export const configSchema = z
  .strictObject({
    name: z.string().min(1).max(64).nullable().default(null),
    listen: z.array(multiaddrText).min(1).max(16).default(['/ip4/0.0.0.0/tcp/4701']),
    announce: z.array(multiaddrText).max(16).default([]),
    bootstrap: z.array(multiaddrText).max(64).default([]),
    mdns: z
      .strictObject({
        enabled: z.boolean().default(true),
        intervalMs: z.number().int().min(100).max(600_000).default(10_000),
      })
      .prefault({}),
    control: z
      .strictObject({
        host: z.string().min(1).default('127.0.0.1'),
        port: port.default(0),
      })
      .prefault({}),
    api: z
      .strictObject({
        enabled: z.boolean().default(true),
        host: z.string().min(1).default('127.0.0.1'),
        port: port.default(7411),
        apiKey: z.string().min(16).max(256).nullable().default(null),
        cors: z.strictObject({ origins: z.array(z.string().regex(/^https?:\/\/[^/\s]+$/, 'an origin: scheme://host[:port], no path')).max(64).default([]) }).prefault({}),
        maxConnections: z.number().int().min(1).max(65_536).default(1024),
        maxConnectionsPerIp: z.number().int().min(1).max(65_536).default(256),
        headersTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
        bodyTimeoutMs: z.number().int().min(100).max(3_600_000).default(60_000),
      })
      .prefault({}),
    adverts: z
      .strictObject({
        periodMs: z.number().int().min(50).max(60_000).default(15_000),
        staleAfterPeriods: z.number().int().min(1).max(1000).default(3),
        goneAfterPeriods: z.number().int().min(2).max(10_000).default(10),
      })
      .prefault({}),
    power: z
      .strictObject({
        profile: z.enum(['auto', ...powerProfiles]).default('auto'),
        batteryFloorPercent: z.number().min(0).max(100).default(20),
        gpuTempCeilingC: z.number().min(30).max(120).default(85),
        actuate: z.boolean().default(false),
        limitsW: z
          .strictObject({
            eco: z.number().int().min(1).max(10_000).default(100),
            balanced: z.number().int().min(1).max(10_000).default(200),
            boost: z.number().int().min(1).max(10_000).default(300),
            turbo: z.number().int().min(1).max(10_000).default(400),
          })
          .prefault({}),
      })
      .prefault({}),
    /** Inference backends; node/backends validates each entry's own fields. */
    backends: z.array(z.record(z.string(), z.unknown())).max(32).default([]),
    log: z
      .strictObject({
        level: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
      })
      .prefault({}),
    consensus: z
      .strictObject({
        admission: z.enum(admissionModes).default('auto'),
        auditLogPath: z.string().min(1).max(4096).nullable().default(null),
      })
      .prefault({}),
  })
  .superRefine((c, ctx) => {
    if (c.adverts.goneAfterPeriods <= c.adverts.staleAfterPeriods) {
      ctx.addIssue({ code: 'custom', path: ['adverts', 'goneAfterPeriods'], message: 'must be greater than adverts.staleAfterPeriods' });
    }
    if (!loopbackHosts.has(c.control.host)) {
      ctx.addIssue({ code: 'custom', path: ['control', 'host'], message: 'the control API is only served on loopback (127.0.0.1, ::1, localhost)' });
    }
    if (c.api.enabled && !loopbackHosts.has(c.api.host) && c.api.apiKey === null) {
      ctx.addIssue({ code: 'custom', path: ['api', 'apiKey'], message: `required when api.host (${c.api.host}) is not loopback` });
    }
  });

export type FednodeConfig = z.output<typeof configSchema>;
export type FednodeConfigInput = z.input<typeof configSchema>;

export interface ConfigField {
  path: string;
  default: unknown;
  why: string;
}

/** Documentation of every field: default and reason. Kept next to the schema. */
export const CONFIG_FIELDS: readonly ConfigField[] = [
  { path: 'name', default: null, why: 'human name shown in status/peers; null = the first characters of the peer id' },
  { path: 'listen', default: ['/ip4/0.0.0.0/tcp/4701'], why: 'libp2p TCP listen addresses; a fixed port keeps invites and bootstrap lists valid across restarts (port 0 = any, for tests)' },
  { path: 'announce', default: [], why: 'addresses to advertise instead of the listen ones (NAT, port forwarding); empty = the real listen addresses' },
  { path: 'bootstrap', default: [], why: 'peers dialled at start and re-dialled with backoff; `join` fills it from the invite. Needed where mDNS cannot reach' },
  { path: 'mdns.enabled', default: true, why: 'LAN discovery with a service name specific to fednode and the cluster; off in tests and on networks that block multicast' },
  { path: 'mdns.intervalMs', default: 10_000, why: 'how often to query; libp2p mdns default, cheap on a LAN' },
  { path: 'control.host', default: '127.0.0.1', why: 'the local control API (status, peers, invite) is for this machine only; loopback enforced' },
  { path: 'control.port', default: 0, why: '0 = pick a free port and write it to runtime.json, where the CLI finds it' },
  { path: 'api.enabled', default: true, why: 'the OpenAI-compatible inference API on this node' },
  { path: 'api.host', default: '127.0.0.1', why: 'loopback by default; any other address requires api.apiKey' },
  { path: 'api.port', default: 7411, why: 'fixed so clients can be pointed at it (next to no well-known service); 0 = any' },
  { path: 'api.apiKey', default: null, why: 'bearer key required from clients when the API listens beyond loopback (min 16 chars)' },
  { path: 'api.cors.origins', default: [], why: 'web origins (scheme://host:port) allowed to call the API from a browser; others are refused (cross-site requests), the node\'s own origin always works' },
  { path: 'api.maxConnections', default: 1024, why: 'concurrent API connections (one node held 14,428 fds without a cap); beyond it a 503' },
  { path: 'api.maxConnectionsPerIp', default: 256, why: 'concurrent API connections from one address, so one client cannot take them all' },
  { path: 'api.headersTimeoutMs', default: 10_000, why: 'a connection that has not sent complete request headers by then is closed' },
  { path: 'api.bodyTimeoutMs', default: 60_000, why: 'a request body not received by then gets a 408 (a 4 MiB body over slow Wi-Fi fits)' },
  { path: 'adverts.periodMs', default: 15_000, why: 'an advert is published at once on a material change (load, models, profile, hardware past its thresholds; looked for when a reading changes, at most every 250 ms), to a member that newly subscribes (0.5 s after its subscription), and at least this often as a keep-alive; 15 s (was 5 s, and 2 s before issue 15) because the keep-alive only says "still here": a dead peer\'s connection drop fails routing over at once, and a silent one is cut by libp2p\'s connection ping (every 20 s: CONNECTION_PING_MS, node/p2p/host-libp2p.ts)' },
  { path: 'adverts.staleAfterPeriods', default: 3, why: 'a peer whose latest advert is older than this many periods is shown stale (tolerates 2 lost keep-alives; 45 s at the default period)' },
  { path: 'adverts.goneAfterPeriods', default: 10, why: 'older than this many periods the peer is dropped from the peer table (150 s at the default period)' },
  { path: 'power.profile', default: 'auto', why: 'auto = follow load (eco < 0.2 <= balanced < 0.6 <= boost < 0.9 <= turbo); or pin one of eco/balanced/boost/turbo' },
  { path: 'power.batteryFloorPercent', default: 20, why: 'below this battery level the profile is forced to eco and routing avoids the node' },
  { path: 'power.gpuTempCeilingC', default: 85, why: 'above this GPU temperature the profile drops a level and routing avoids the node' },
  { path: 'power.actuate', default: false, why: 'opt-in: on each profile change set every NVIDIA GPU to power.limitsW[profile] (clamped to its min..max limit) with `nvidia-smi -pl`, restored on stop; needs root (refused once, clearly, then the node just serves)' },
  { path: 'power.limitsW.eco', default: 100, why: "GPU power limit (W) in eco when power.actuate is on (the design's default), clamped to each GPU's power.min_limit..max_limit" },
  { path: 'power.limitsW.balanced', default: 200, why: "GPU power limit (W) in balanced (the design's default)" },
  { path: 'power.limitsW.boost', default: 300, why: "GPU power limit (W) in boost (the design's default)" },
  { path: 'power.limitsW.turbo', default: 400, why: "GPU power limit (W) in turbo (the design's default)" },
  { path: 'backends', default: [], why: 'inference backends (ollama, openai-compatible, simulated, llama-cpp: the embedded engine on GGUF files); per entry also capacity (concurrent requests), health {intervalMs, timeoutMs, failureThreshold, successThreshold, passiveFailures, cooldownBaseMs, cooldownMaxMs, handshake} and, for ollama, parallel (its OLLAMA_NUM_PARALLEL); empty = this node routes but serves nothing' },
  { path: 'log.level', default: 'info', why: 'JSON-lines logs on stderr at this level and above' },
  { path: 'consensus.admission', default: 'auto', why: "what a member does with a valid join claim: 'auto' proposes member.add through consensus at once; 'approve' keeps it pending until an operator runs `fednode approve <peer>` on any member" },
  { path: 'consensus.auditLogPath', default: null, why: 'append-only JSON-lines audit of every consensus signature this node makes (fsynced before sending; for crash tests and forensics); $FEDNODE_CONSENSUS_AUDIT overrides; null = off' },
];

export function defaultConfig(): FednodeConfig {
  return configSchema.parse({});
}

/** 1-based line and column of a character offset, for error messages. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let column = 1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      column = 1;
    } else {
      column++;
    }
  }
  return { line, column };
}

/**
 * Offset of the first syntax error in `text` (a small JSON recogniser), because
 * V8's JSON.parse message does not always carry a position. null if none found.
 */
export function jsonErrorOffset(text: string): number | null {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i] as string)) i++;
  };
  const fail = (): never => {
    throw new RuntimeError('ERR_CONFIG_PARSE', 'JSON syntax error', { offset: i });
  };
  const lit = (word: string): void => {
    if (text.startsWith(word, i)) i += word.length;
    else fail();
  };
  const str = (): void => {
    i++; // opening quote
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c < 0x20) fail();
      if (c === 0x5c) {
        i++;
        const e = text[i];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail();
          i += 5;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i++;
        else fail();
      } else i++;
    }
    fail();
  };
  const num = (): void => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (m === null) fail();
    else i += m[0].length;
  };
  // Nesting bound: JSON.parse would have failed first on anything deeper than its own limit.
  const value = (depth: number): void => {
    if (depth > 512) fail();
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail();
        str();
        ws();
        if (text[i] !== ':') fail();
        i++;
        value(depth + 1);
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') {
          i++;
          return;
        } else fail();
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value(depth + 1);
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') {
          i++;
          return;
        } else fail();
      }
    } else if (c === '"') str();
    else if (c === 't') lit('true');
    else if (c === 'f') lit('false');
    else if (c === 'n') lit('null');
    else if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) num();
    else fail();
  };
  try {
    value(0);
    ws();
    return i < text.length ? i : null;
  } catch (e) {
    const at = e instanceof RuntimeError ? e.data['offset'] : null;
    return typeof at === 'number' ? Math.min(at, text.length) : null;
  }
}

/** Parse JSON with an error that names the file and the line:column. */
export function parseJsonFile(text: string, file: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const offset = jsonErrorOffset(text);
    const where = offset === null ? '' : (() => { const lc = lineColumn(text, offset); return `:${lc.line}:${lc.column}`; })();
    throw new RuntimeError('ERR_CONFIG_PARSE', `${file}${where}: invalid JSON: ${msg}`, { file, offset, detail: msg });
  }
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(top level)' : path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[');
}

/** Validate a parsed config; every problem is listed with its field path. */
export function validateConfig(value: unknown, file: string): FednodeConfig {
  const r = configSchema.safeParse(value);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => {
    if (i.code === 'unrecognized_keys') {
      return i.keys.map((k) => `${formatPath([...i.path, k])}: unknown field`).join('; ');
    }
    return `${formatPath(i.path)}: ${i.message}`;
  });
  throw new RuntimeError('ERR_CONFIG_INVALID', `${file}: invalid config: ${problems.join('; ')}`, { file, problems });
}

export function parseConfig(text: string, file: string): FednodeConfig {
  return validateConfig(parseJsonFile(text, file), file);
}

export async function loadConfig(file: string): Promise<FednodeConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new RuntimeError('ERR_CONFIG_MISSING', `${file}: config file missing (run \`fednode init\`)`, { file });
    throw e;
  }
  return parseConfig(text, file);
}

/** Text written by `init`: every field spelled out with its default so the file documents itself. */
export function renderConfig(config: FednodeConfig): string {
  return JSON.stringify(config, null, 2) + '\n';
}
