/** Flags shared by `init` and `join` that set fields of the new config file. */
import { resolve } from 'node:path';
import type { FlagSpec, ParsedArgs } from '../args.js';
import { flagBool, flagList, flagNumber, flagString } from '../command.js';
import type { FednodeConfigInput } from '../../node/config.js';
import { admissionModes } from '../../node/config.js';
import { UsageError } from '../args.js';

export const CONFIG_FLAGS: readonly FlagSpec[] = [
  { name: 'name', type: 'string', placeholder: '<name>', description: 'node name shown in status and peers (config: name)' },
  { name: 'listen', type: 'string', repeatable: true, placeholder: '<multiaddr>', description: 'libp2p listen address (config: listen)', defaultText: '/ip4/0.0.0.0/tcp/4701' },
  { name: 'announce', type: 'string', repeatable: true, placeholder: '<multiaddr>', description: 'address to advertise instead of the listen ones (config: announce)' },
  { name: 'bootstrap', type: 'string', repeatable: true, placeholder: '<multiaddr>', description: 'peer to dial at start, with /p2p/<id> (config: bootstrap)' },
  { name: 'mdns', type: 'boolean', description: 'LAN discovery by mDNS; --no-mdns turns it off (config: mdns.enabled)', defaultText: 'on' },
  { name: 'control-port', type: 'int', min: 0, max: 65535, placeholder: '<port>', description: 'control API port, 0 = any (config: control.port)', defaultText: '0' },
  { name: 'api-port', type: 'int', min: 0, max: 65535, placeholder: '<port>', description: 'inference API port, 0 = any (config: api.port)', defaultText: '7411' },
  { name: 'advert-period', type: 'duration', placeholder: '<duration>', description: 'advert keep-alive; changes go out at once (config: adverts.periodMs)', defaultText: '5s' },
  { name: 'simulated-model', type: 'string', repeatable: true, placeholder: '<model>', description: 'serve this model id from the embedded SIMULATED backend: deterministic tokens, no weights (config: backends)' },
  { name: 'simulated-tps', type: 'int', min: 0, max: 100_000, placeholder: '<n>', description: 'tokens/s per request of the simulated backend; 0 = zero delay', defaultText: '50' },
  { name: 'gguf', type: 'string', repeatable: true, placeholder: '<file>', description: 'serve this GGUF model from the embedded llama.cpp engine (needs the optional package node-llama-cpp; config: backends, kind llama-cpp)' },
  { name: 'llama-threads', type: 'int', min: 1, max: 256, placeholder: '<n>', description: 'CPU threads of the embedded llama.cpp engine (config: backends[].threads)', defaultText: 'half the cores' },
  { name: 'llama-sequences', type: 'int', min: 1, max: 64, placeholder: '<n>', description: 'parallel sequences per model = requests at once (config: backends[].sequences)', defaultText: '2' },
  { name: 'admission', type: 'string', placeholder: '<mode>', description: "what this member does with a valid join claim: 'auto' proposes member.add, 'approve' waits for `fednode approve` (config: consensus.admission)", defaultText: 'auto' },
  { name: 'consensus-audit', type: 'string', placeholder: '<path>', description: 'append every consensus signature to this JSON-lines file (config: consensus.auditLogPath)' },
  { name: 'log-level', type: 'string', placeholder: '<level>', description: 'debug, info, warn or error (config: log.level)', defaultText: 'info' },
];

export function configFromFlags(args: ParsedArgs): FednodeConfigInput {
  const c: Record<string, unknown> = {};
  const name = flagString(args, 'name');
  if (name !== undefined) c['name'] = name;
  const listen = flagList(args, 'listen');
  if (listen.length > 0) c['listen'] = listen;
  const announce = flagList(args, 'announce');
  if (announce.length > 0) c['announce'] = announce;
  const bootstrap = flagList(args, 'bootstrap');
  if (bootstrap.length > 0) c['bootstrap'] = bootstrap;
  const mdns = flagBool(args, 'mdns');
  if (mdns !== undefined) c['mdns'] = { enabled: mdns };
  const cp = flagNumber(args, 'control-port');
  if (cp !== undefined) c['control'] = { port: cp };
  const ap = flagNumber(args, 'api-port');
  if (ap !== undefined) c['api'] = { port: ap };
  const period = flagNumber(args, 'advert-period');
  if (period !== undefined) c['adverts'] = { periodMs: period };
  const simModels = flagList(args, 'simulated-model');
  const backends: Record<string, unknown>[] = [];
  if (simModels.length > 0) backends.push({ kind: 'simulated', id: 'simulated', models: simModels, tokensPerSecond: flagNumber(args, 'simulated-tps') ?? 50 });
  const gguf = flagList(args, 'gguf');
  const threads = flagNumber(args, 'llama-threads');
  const sequences = flagNumber(args, 'llama-sequences');
  if (gguf.length === 0 && (threads !== undefined || sequences !== undefined)) throw new UsageError('--llama-threads and --llama-sequences need --gguf <file>', null);
  if (gguf.length > 0) backends.push({ kind: 'llama-cpp', id: 'llama-cpp', models: gguf.map((f) => resolve(f)), ...(threads !== undefined ? { threads } : {}), ...(sequences !== undefined ? { sequences } : {}) });
  if (backends.length > 0) c['backends'] = backends;
  const admission = flagString(args, 'admission');
  if (admission !== undefined && !(admissionModes as readonly string[]).includes(admission)) throw new UsageError(`--admission must be ${admissionModes.join(' or ')}, got '${admission}'`, null);
  const audit = flagString(args, 'consensus-audit');
  if (admission !== undefined || audit !== undefined) c['consensus'] = { ...(admission !== undefined ? { admission } : {}), ...(audit !== undefined ? { auditLogPath: resolve(audit) } : {}) };
  const level = flagString(args, 'log-level');
  if (level !== undefined) c['log'] = { level };
  return c;
}
