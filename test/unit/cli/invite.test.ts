import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { identityFromSeed } from '../../../crypto/keys.js';
import { createEnvelope } from '../../../crypto/envelope.js';
import { dataDirPaths, readClusterFile, readSwarmKey } from '../../../node/datadir.js';
import { createJoinClaim, createInvite, InviteMemberSource } from '../../../node/p2p/members.js';
import { RuntimeError } from '../../../node/runtime/errors.js';
import { initDataDir, joinDataDir } from '../../../node/runtime/init.js';
import { createInviteToken, parseInviteToken } from '../../../node/runtime/invite.js';

const issuer = identityFromSeed(new Uint8Array(32).fill(1));
const joiner = identityFromSeed(new Uint8Array(32).fill(2));
const cluster = 'fc0123456789abcdef01234567';
const psk = new Uint8Array(32).fill(7);
const T0 = 1_700_000_000_000;
const genesis = [{ peerId: issuer.peerId, publicKey: Buffer.from(issuer.publicKey).toString('hex') }];
const bootstrap = [`/ip4/127.0.0.1/tcp/4701/p2p/${issuer.peerId}`];

function token(ttlMs = 3600_000): string {
  return createInviteToken(issuer, { cluster, psk, bootstrap, genesis, nowMs: T0, ttlMs });
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(RuntimeError);
    return (e as RuntimeError).code;
  }
  return 'no error';
}

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('invite tokens', () => {
  it('round-trip: cluster, PSK, bootstrap, genesis, expiry and issuer', () => {
    const t = parseInviteToken(token(), T0 + 1000);
    expect(t.cluster).toBe(cluster);
    expect(t.issuer).toBe(issuer.peerId);
    expect([...t.psk]).toEqual([...psk]);
    expect(t.bootstrap).toEqual(bootstrap);
    expect(t.genesis).toEqual(genesis);
    expect(t.expiresMs).toBe(T0 + 3600_000);
  });

  it('the embedded invite lets a member admit the joiner (node/p2p admission)', () => {
    const t = parseInviteToken(token(), T0 + 1000);
    const members = new InviteMemberSource({ cluster, genesis: [issuer.peerId], now: () => T0 + 2000 });
    const claim = createJoinClaim(joiner, { cluster, nowMs: T0 + 2000, invite: t.invite, secret: t.secret });
    expect(members.admit(claim)).toMatchObject({ ok: true, peerId: joiner.peerId, inviter: issuer.peerId });
    expect(members.isMember(joiner.peerId)).toBe(true);
  });

  it('rejects an expired token', () => {
    expect(code(() => parseInviteToken(token(60_000), T0 + 60_000))).toBe('ERR_TOKEN_EXPIRED');
  });

  it('rejects a tampered token (any changed byte of the signed part)', () => {
    const bytes = Buffer.from(token(), 'base64url');
    let badSig = 0;
    // flip one byte at several offsets inside the envelope: never accepted
    for (const off of [12, 40, 100, 200, bytes.length - 80, bytes.length - 10]) {
      const b = Buffer.from(bytes);
      b[off] = (b[off] ?? 0) ^ 0x01;
      const c = code(() => parseInviteToken(b.toString('base64url'), T0 + 1000));
      expect(['ERR_TOKEN_BAD_SIGNATURE', 'ERR_TOKEN_MALFORMED']).toContain(c);
      if (c === 'ERR_TOKEN_BAD_SIGNATURE') badSig++;
    }
    expect(badSig).toBeGreaterThan(0);
  });

  it('rejects garbage, truncation and other signed objects with specific errors', () => {
    expect(code(() => parseInviteToken('', T0))).toBe('ERR_TOKEN_MALFORMED');
    expect(code(() => parseInviteToken('hello world!', T0))).toBe('ERR_TOKEN_MALFORMED');
    expect(code(() => parseInviteToken(token().slice(0, 200), T0))).toBe('ERR_TOKEN_MALFORMED');
    expect(code(() => parseInviteToken('x'.repeat(20_000), T0))).toBe('ERR_TOKEN_MALFORMED');
    const other = createEnvelope(issuer, { kind: 'advert', cluster, seq: 1, time: T0, body: {} });
    expect(code(() => parseInviteToken(Buffer.from(other).toString('base64url'), T0))).toBe('ERR_TOKEN_WRONG_KIND');
    const p2pInvite = createInvite(issuer, { cluster, nowMs: T0, ttlMs: 1000, secret: new Uint8Array(16) });
    expect(code(() => parseInviteToken(Buffer.from(p2pInvite).toString('base64url'), T0))).toBe('ERR_TOKEN_WRONG_KIND');
  });

  it('refuses lifetimes beyond a week', () => {
    expect(code(() => token(8 * 24 * 3600_000))).toBe('ERR_TOKEN_INVALID');
  });

  it('`join` writes the cluster settings and bootstrap addresses of the token', async () => {
    const base = await mkdtemp(join(tmpdir(), 'fednode-join-'));
    dirs.push(base);
    const founder = await initDataDir({ dir: join(base, 'a'), newCluster: true, nowMs: Date.now() });
    const fpaths = dataDirPaths(join(base, 'a'));
    const fcluster = await readClusterFile(fpaths.cluster);
    const fpsk = await readSwarmKey(fpaths.swarmKey);
    const { loadIdentity } = await import('../../../crypto/keys.js');
    const fid = await loadIdentity(fpaths.identity);
    const addr = `/ip4/127.0.0.1/tcp/4999/p2p/${fid.peerId}`;
    const tok = createInviteToken(fid, { cluster: fcluster.id, psk: fpsk.raw, bootstrap: [addr], genesis: fcluster.genesis, nowMs: Date.now(), ttlMs: 60_000 });
    const r = await joinDataDir({ dir: join(base, 'b'), token: tok, nowMs: Date.now(), config: { listen: ['/ip4/127.0.0.1/tcp/0'] } });
    expect(r.cluster).toBe(founder.cluster);
    expect(r.config.bootstrap).toEqual([addr]);
    const bpaths = dataDirPaths(join(base, 'b'));
    const bcluster = await readClusterFile(bpaths.cluster);
    expect(bcluster.id).toBe(fcluster.id);
    expect(bcluster.genesis).toEqual(fcluster.genesis);
    expect(bcluster.joinedWith).toBe(tok);
    expect(Buffer.from((await readSwarmKey(bpaths.swarmKey)).file).toString()).toBe(Buffer.from(fpsk.file).toString());
    // a bad token leaves no data directory behind
    await expect(joinDataDir({ dir: join(base, 'c'), token: tok + 'x', nowMs: Date.now() })).rejects.toBeInstanceOf(RuntimeError);
    const { pathExists } = await import('../../../node/datadir.js');
    expect(await pathExists(join(base, 'c'))).toBe(false);
    // a node made by plain `init` keeps its identity when it joins
    const plain = await initDataDir({ dir: join(base, 'd'), newCluster: false, nowMs: Date.now(), config: { name: 'dee' } });
    expect(plain.cluster).toBeNull();
    const tok2 = createInviteToken(fid, { cluster: fcluster.id, psk: fpsk.raw, bootstrap: [addr], genesis: fcluster.genesis, nowMs: Date.now(), ttlMs: 60_000 });
    const j2 = await joinDataDir({ dir: join(base, 'd'), token: tok2, nowMs: Date.now() });
    expect(j2.peerId).toBe(plain.peerId);
    expect(j2.config.name).toBe('dee');
    expect(j2.config.bootstrap).toEqual([addr]);
    // joining twice is refused (the node is already in a cluster)
    await expect(joinDataDir({ dir: join(base, 'd'), token: tok2, nowMs: Date.now() })).rejects.toMatchObject({ code: 'ERR_DATADIR_EXISTS' });
  });
});
