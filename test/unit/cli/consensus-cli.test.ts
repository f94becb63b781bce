import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseArgs, UsageError } from '../../../cli/args.js';
import { opFromArgs } from '../../../cli/commands/consensus-common.js';
import { proposeCommand } from '../../../cli/commands/propose.js';
import { contentHashOf } from '../../../consensus/patterns.js';
import { identityFromSeed } from '../../../crypto/keys.js';
import { startControlServer } from '../../../node/control/server.js';
import { createAdmission } from '../../../node/runtime/admission.js';
import { opFromJson, opsFromJson, opToJson, registryToJson } from '../../../node/runtime/consensus-ops.js';
import { LOG_REPLY_MAX_BYTES, registerConsensusRoutes } from '../../../node/runtime/consensus-routes.js';
import { isRuntimeError } from '../../../node/runtime/errors.js';
import { openStore } from '../../../node/store/index.js';
import { nullLogger } from '../../../node/log.js';
import { consensusDouble } from '../../helpers/consensus-double.js';

const self = identityFromSeed(new Uint8Array(32).fill(1));
const other = identityFromSeed(new Uint8Array(32).fill(2));
const genesis = { members: [{ publicKey: self.publicKey, power: 1, name: 'self' }] };

const args = (argv: string[]): ReturnType<typeof parseArgs> => parseArgs(argv, proposeCommand.flags, proposeCommand.positionals, 'propose');
const POLICY = { weights: { load: 1 }, batteryFloorPct: 20, temperatureCeilingC: 85 };

function usage(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return e as UsageError;
  }
  throw new Error('expected a UsageError');
}

function badRequestField(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isRuntimeError(e, 'ERR_BAD_REQUEST')) return String(e.data['field']);
    throw e;
  }
  throw new Error('expected ERR_BAD_REQUEST');
}

describe('fednode propose: arguments -> op JSON (every kind) -> checked op', () => {
  it.each([
    [['member.add', other.peerId, '--name', 'box2', '--power', '3'], { kind: 'member.add', peer: other.peerId, power: 3, name: 'box2' }],
    [['member.add', other.peerId], { kind: 'member.add', peer: other.peerId, power: 1, name: '' }],
    [['member.remove', other.peerId], { kind: 'member.remove', peer: other.peerId }],
    [['route.policy', '--weight', 'load=2', '--weight', 'latency=0.5', '--battery-floor', '30', '--temp-ceiling', '80'], { kind: 'route.policy', weights: { load: 2, latency: 0.5 }, batteryFloorPct: 30, temperatureCeilingC: 80 }],
    [['route.policy', '--battery-floor', '25'], { kind: 'route.policy', weights: { load: 1 }, batteryFloorPct: 25, temperatureCeilingC: 85 }],
    [['model.alias', 'llama', 'llama3.1:8b'], { kind: 'model.alias', alias: 'llama', model: 'llama3.1:8b' }],
    [['model.alias', 'llama', '--remove'], { kind: 'model.alias', alias: 'llama', model: null }],
    [['quality.gates', 'accuracy=0.8', 'toxicity=-0.1'], { kind: 'quality.gates', gates: { accuracy: 0.8, toxicity: -0.1 } }],
    [['pattern', '--name', 'greet', '--content', 'Say hello', '--tag', 'a', '--tag', 'b', '--quality', 'accuracy=0.9'], { kind: 'pattern', name: 'greet', content: 'Say hello', tags: ['a', 'b'], quality: { accuracy: 0.9 } }],
    [['pattern', '--name', 'f', '--file', '/x/y.txt'], { kind: 'pattern', name: 'f', content: 'from file /x/y.txt', tags: [], quality: null }],
  ])('%j', (argv, expected) => {
    const json = opFromArgs(args(argv), { currentPolicy: POLICY, readFile: (p) => `from file ${p}` });
    expect(json).toEqual(expected);
    // the node's parser accepts it and the JSON form round-trips
    const op = opFromJson(JSON.parse(JSON.stringify(json)));
    const back = opToJson(op);
    expect(back).toMatchObject(json);
    if (op.kind === 'pattern') expect(back).toMatchObject({ contentHash: Buffer.from(contentHashOf(op.content)).toString('hex') });
    if (op.kind === 'member.add') expect(op.publicKey).toEqual(other.publicKey);
  });

  it.each([
    [['member.grant', 'x'], /unknown pattern kind 'member.grant'/],
    [['member.add'], /needs <peer>/],
    [['member.add', 'not-a-peer!'], /is not a peer id/],
    [['member.add', other.peerId, 'extra'], /unexpected argument 'extra'/],
    [['member.remove', other.peerId, '--name', 'x'], /--name does not apply to propose member.remove/],
    [['route.policy'], /needs at least one of --weight/],
    [['route.policy', '--weight', 'load'], /name=number pairs, got 'load'/],
    [['route.policy', '--weight', 'load=fast'], /must be a number, got 'fast'/],
    [['route.policy', '--battery-floor', 'low'], /--battery-floor must be a number/],
    [['model.alias'], /needs <alias>/],
    [['model.alias', 'llama'], /needs the <model>/],
    [['quality.gates', 'accuracy'], /name=number pairs/],
    [['quality.gates', 'a=1', 'a=2'], /'a' given twice/],
    [['pattern', '--content', 'x'], /needs --name/],
    [['pattern', '--name', 'n'], /exactly one of --content <text> or --file <path>/],
    [['pattern', '--name', 'n', '--content', 'x', '--file', 'f'], /exactly one of/],
    [['pattern', '--name', 'n', '--content', 'x', '--remove'], /--remove does not apply to propose pattern/],
  ])('usage error: %j', (argv, message) => {
    const e = usage(() => opFromArgs(args(argv), { currentPolicy: POLICY, readFile: () => '' }));
    expect(e.message).toMatch(message);
  });

  it('a missing kind is a usage error of the parser', () => {
    expect(usage(() => args([])).message).toMatch(/missing argument <kind>/);
    expect(usage(() => opFromArgs({ flags: {}, positionals: [] })).message).toMatch(/needs a kind: member.add, member.remove/);
  });
  it('route.policy without the current policy needs every field', () => {
    expect(usage(() => opFromArgs(args(['route.policy', '--battery-floor', '10']))).message).toMatch(/current policy is unknown/);
  });
  it('an unreadable --file is a usage error naming the file', () => {
    const e = usage(() => opFromArgs(args(['pattern', '--name', 'n', '--file', '/nope']), { readFile: () => { throw new Error('ENOENT: no such file'); } }));
    expect(e.message).toMatch(/--file \/nope: ENOENT/);
  });
});

describe('control bodies -> ops: malformed bodies are rejected with the field named', () => {
  const pattern = { kind: 'pattern', name: 'n', content: 'c' };
  it.each([
    ['not a list', { ops: 'x' }, 'ops'],
    ['empty list', [], 'ops'],
    ['not an object', ['x'], 'ops[0]'],
    ['unknown kind', [{ kind: 'nope' }], 'ops[0].kind'],
    ['unknown field', [{ ...pattern, colour: 'red' }], 'ops[0].colour'],
    ['bad peer id', [pattern, { kind: 'member.add', peer: 'abc' }], 'ops[1].peer'],
    ['content hash mismatch', [{ ...pattern, contentHash: '00'.repeat(32) }], 'ops[0].contentHash'],
    ['content hash not hex', [{ ...pattern, contentHash: 'zz' }], 'ops[0].contentHash'],
    ['content not a string', [{ ...pattern, content: 5 }], 'ops[0].content'],
    ['name too long', [{ ...pattern, name: 'x'.repeat(500) }], 'ops[0].name'],
    ['empty name', [{ ...pattern, name: '' }], 'ops[0].name'],
    ['battery floor out of range', [{ kind: 'route.policy', weights: { load: 1 }, batteryFloorPct: 150, temperatureCeilingC: 80 }], 'ops[0].batteryFloorPct'],
    ['power not an integer', [{ kind: 'member.add', peer: other.peerId, power: 1.5 }], 'ops[0]'],
    ['a tag not a string', [{ ...pattern, tags: [5] }], 'ops[0].tags'],
    ['too many tags', [{ ...pattern, tags: Array.from({ length: 40 }, (_, i) => `t${i}`) }], 'ops[0].tags'],
  ])('%s', (_name, body, field) => {
    const raw = Array.isArray(body) ? body : body.ops;
    expect(badRequestField(() => opsFromJson(raw))).toBe(field);
  });
  it('a given content hash that matches is accepted', () => {
    const op = opFromJson({ ...pattern, contentHash: Buffer.from(contentHashOf('c')).toString('hex') });
    expect(op.kind).toBe('pattern');
  });
});

describe('consensus control routes (real HTTP server, real registry, one-node commit double)', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('log replies are cut at LOG_REPLY_MAX_BYTES and page on with from', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fednode-routes-'));
    dirs.push(dir);
    const store = await openStore(join(dir, 'store'));
    const c = consensusDouble(self, genesis);
    const admission = createAdmission({ cluster: 'fc' + '0'.repeat(24), selfId: self.peerId, selfKey: self.publicKey, mode: 'auto', consensus: c, store, logger: nullLogger, now: () => 1, genesisMember: true });
    const token = 't'.repeat(43);
    const srv = await startControlServer({ host: '127.0.0.1', port: 0, token });
    registerConsensusRoutes(srv, c, admission);
    try {
      const big = 'y'.repeat(60_000);
      const n = Math.ceil(LOG_REPLY_MAX_BYTES / 60_000) + 10;
      for (let i = 0; i < n; i++) await c.submit([{ kind: 'pattern', name: `p${i}`, content: big, contentHash: contentHashOf(big), tags: [], quality: null }]);
      const get = async (from: number): Promise<{ decidedHeight: number; entries: Array<{ height: number }> }> => {
        const r = await fetch(`${srv.url}/consensus/log?from=${from}&limit=1000`, { headers: { authorization: `Bearer ${token}` } });
        const text = await r.text();
        expect(text.length).toBeLessThanOrEqual(LOG_REPLY_MAX_BYTES + 100_000);
        return JSON.parse(text) as { decidedHeight: number; entries: Array<{ height: number }> };
      };
      const first = await get(1);
      expect(first.entries.length).toBeGreaterThan(0);
      expect(first.entries.length).toBeLessThan(n);
      const rest = await get(first.entries[first.entries.length - 1]!.height + 1);
      expect([...first.entries, ...rest.entries].map((e) => e.height)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      expect(rest.decidedHeight).toBe(n);
    } finally {
      await srv.close();
      await store.close();
    }
  });

  it('propose commits; bad bodies 400 with the field; rejections 400 with reason and index; timeout 504; full 503; log, patterns, joins, approve', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fednode-routes-'));
    dirs.push(dir);
    const store = await openStore(join(dir, 'store'));
    const c = consensusDouble(self, genesis);
    const admission = createAdmission({ cluster: 'fc' + '0'.repeat(24), selfId: self.peerId, selfKey: self.publicKey, mode: 'approve', consensus: c, store, logger: nullLogger, now: () => 1, genesisMember: true });
    await admission.start();
    const token = 't'.repeat(43);
    const srv = await startControlServer({ host: '127.0.0.1', port: 0, token });
    registerConsensusRoutes(srv, c, admission);
    const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
      const r = await fetch(srv.url + path, { method, headers: { authorization: `Bearer ${token}` }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
      return { status: r.status, json: (await r.json()) as Record<string, unknown> };
    };
    try {
      const ok = await call('POST', '/consensus/propose', { ops: [{ kind: 'pattern', name: 'greet', content: 'hi', tags: ['x'] }] });
      expect(ok.status).toBe(200);
      expect(ok.json).toMatchObject({ height: 1, round: 0, signers: [self.peerId], power: 1, totalPower: 1 });
      expect(c.submitted).toHaveLength(1);

      const bad = await call('POST', '/consensus/propose', { ops: [{ kind: 'pattern', name: 'x', content: 'c', contentHash: 'ab'.repeat(32) }] });
      expect(bad.status).toBe(400);
      expect(bad.json['error']).toMatchObject({ code: 'ERR_BAD_REQUEST', data: { field: 'ops[0].contentHash' } });
      expect((await call('POST', '/consensus/propose', { ops: [], waitMs: 5 })).json['error']).toMatchObject({ code: 'ERR_BAD_REQUEST', data: { field: 'ops' } });
      expect((await call('POST', '/consensus/propose', { ops: [{ kind: 'pattern', name: 'x', content: 'c' }], waitMs: -1 })).json['error']).toMatchObject({ data: { field: 'waitMs' } });
      expect((await call('POST', '/consensus/propose', { op: {} })).json['error']).toMatchObject({ code: 'ERR_BAD_REQUEST', data: { field: 'op' } });
      expect((await call('POST', '/consensus/propose', [1])).json['error']).toMatchObject({ data: { field: 'body' } });

      // valid shape, invalid against the registry: removing a non-member (op 1)
      const rej = await call('POST', '/consensus/propose', { ops: [{ kind: 'model.alias', alias: 'a', model: 'b' }, { kind: 'member.remove', peer: other.peerId }] });
      expect(rej.status).toBe(400);
      expect(rej.json['error']).toMatchObject({ code: 'ERR_PATTERN_REJECTED', data: { index: 1 } });
      expect(JSON.stringify(rej.json)).toMatch(/not a member/);
      expect(c.submitted).toHaveLength(1); // rejected before submitting

      c.mode = 'timeout';
      const slow = await call('POST', '/consensus/propose', { ops: [{ kind: 'model.alias', alias: 'a', model: 'b' }], waitMs: 10 });
      expect(slow.status).toBe(504);
      expect(slow.json['error']).toMatchObject({ code: 'ERR_SUBMIT_TIMEOUT' });
      c.mode = 'full';
      expect((await call('POST', '/consensus/propose', { ops: [{ kind: 'model.alias', alias: 'a', model: 'b' }] })).status).toBe(503);
      c.mode = 'commit';

      const log = await call('GET', '/consensus/log?from=1&limit=5');
      expect(log.status).toBe(200);
      expect(log.json).toMatchObject({ decidedHeight: 1, entries: [{ height: 1, ops: [{ kind: 'pattern', name: 'greet', content: 'hi', tags: ['x'] }] }] });
      expect((await call('GET', '/consensus/log?limit=100000')).json['error']).toMatchObject({ code: 'ERR_BAD_REQUEST', data: { field: 'limit' } });
      expect((await call('GET', '/consensus/log?from=abc')).json['error']).toMatchObject({ data: { field: 'from' } });

      const pats = await call('GET', '/consensus/patterns');
      expect(pats.json).toMatchObject({ height: 1, registryHash: c.status().registryHash });
      expect(pats.json['registry']).toEqual(registryToJson(c.registry(), 1024));

      // the listing cuts long contents; the single-pattern route gives all of it
      const long = 'x'.repeat(5000);
      expect((await call('POST', '/consensus/propose', { ops: [{ kind: 'pattern', name: 'long', content: long }] })).status).toBe(200);
      const listed = (await call('GET', '/consensus/patterns')).json['registry'] as { patterns: Array<{ name: string; content: string; contentChars: number; truncated: boolean }> };
      expect(listed.patterns.find((p) => p.name === 'long')).toMatchObject({ content: 'x'.repeat(1024), contentChars: 5000, truncated: true });
      expect((await call('GET', '/consensus/pattern?name=long')).json).toMatchObject({ name: 'long', content: long, truncated: false });
      expect((await call('GET', '/consensus/pattern?name=none')).status).toBe(404);
      expect((await call('GET', '/consensus/pattern')).json['error']).toMatchObject({ code: 'ERR_BAD_REQUEST', data: { field: 'name' } });

      expect((await call('GET', '/consensus/joins')).json).toEqual({ mode: 'approve', pending: [] });
      const ap = await call('POST', '/consensus/approve', { peer: other.peerId });
      expect(ap.status).toBe(200);
      expect(ap.json).toMatchObject({ height: 3, peer: other.peerId, hadClaim: false });
      expect(c.registry().pending.map((p) => p.op.kind)).toEqual(['member.add']);
      const again = await call('POST', '/consensus/approve', { peer: other.peerId });
      expect(again.status).toBe(400);
      expect(again.json['error']).toMatchObject({ code: 'ERR_ALREADY_MEMBER' });
      expect((await call('POST', '/consensus/approve', { peer: 'nope' })).json['error']).toMatchObject({ code: 'ERR_BAD_REQUEST', data: { field: 'peer' } });
      expect((await call('GET', '/consensus/status')).json).toMatchObject({ decidedHeight: 3, admission: { mode: 'approve', admitted: true, admittedAtHeight: 0 } });
    } finally {
      admission.stop();
      await srv.close();
      await store.close();
    }
  });
});
