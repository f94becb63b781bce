import { mkdtemp, chmod, writeFile, readFile, stat, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { generateIdentity, identityFromSeed, loadIdentity, peerIdFromPublicKey, saveIdentity, toLibp2pPrivateKey } from '../../../crypto/keys.js';
import { CryptoError } from '../../../crypto/errors.js';
import { ed25519 } from '../../../crypto/ed25519.js';

const dirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'fednode-keys-'));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof CryptoError) return err.code;
    throw err;
  }
  return 'no error';
}

describe('identity keys', () => {
  it('the libp2p PeerId of the key is the envelope signer id', () => {
    const id = generateIdentity();
    expect(peerIdFromPrivateKey(toLibp2pPrivateKey(id)).toString()).toBe(id.peerId);
    expect(peerIdFromPublicKey(id.publicKey)).toBe(id.peerId);
    expect(id.peerId.startsWith('12D3KooW')).toBe(true);
  });

  it('a libp2p signature with the exported key verifies with our Ed25519', async () => {
    const id = generateIdentity();
    const msg = new TextEncoder().encode('hello');
    const sig = await toLibp2pPrivateKey(id).sign(msg);
    expect(ed25519.verify(id.publicKey, msg, sig)).toBe(true);
  });

  it('saves with mode 0600 and loads the same identity', async () => {
    const d = await tmp();
    const path = join(d, 'sub', 'identity.key');
    const id = generateIdentity();
    await saveIdentity(path, id);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const back = await loadIdentity(path);
    expect(back.peerId).toBe(id.peerId);
    expect(Buffer.from(back.secretKey).equals(Buffer.from(id.secretKey))).toBe(true);
  });

  it('never replaces an existing key unless told to', async () => {
    const d = await tmp();
    const path = join(d, 'identity.key');
    const first = generateIdentity();
    await saveIdentity(path, first);
    expect(await codeOf(saveIdentity(path, generateIdentity()))).toBe('ERR_KEY_FILE_EXISTS');
    expect((await loadIdentity(path)).peerId).toBe(first.peerId);
    const second = generateIdentity();
    await saveIdentity(path, second, { overwrite: true });
    expect((await loadIdentity(path)).peerId).toBe(second.peerId);
  });

  it('refuses a key readable by group or others, and says how to fix it', async () => {
    const d = await tmp();
    const path = join(d, 'identity.key');
    await saveIdentity(path, generateIdentity());
    for (const mode of [0o644, 0o604, 0o640]) {
      await chmod(path, mode);
      try {
        await loadIdentity(path);
        expect.unreachable();
      } catch (err) {
        expect((err as CryptoError).code).toBe('ERR_KEY_FILE_PERMISSIONS');
        expect((err as Error).message).toContain('chmod 600');
      }
    }
  });

  it('names a missing key file', async () => {
    const d = await tmp();
    expect(await codeOf(loadIdentity(join(d, 'nope.key')))).toBe('ERR_KEY_FILE_MISSING');
  });

  it('gives a clear error for each kind of corrupt file, and leaves it in place', async () => {
    const d = await tmp();
    const path = join(d, 'identity.key');
    const good = JSON.parse(await (async () => {
      await saveIdentity(path, identityFromSeed(new Uint8Array(32).fill(5)));
      return readFile(path, 'utf8');
    })()) as Record<string, unknown>;
    const corrupt: [string, string][] = [
      ['not json at all', 'not valid JSON'],
      [JSON.stringify([1, 2]), 'unsupported version'],
      [JSON.stringify({ ...good, version: 9 }), 'unsupported version'],
      [JSON.stringify({ ...good, type: 'rsa' }), 'unsupported key type'],
      [JSON.stringify({ ...good, seed: 'AAAA' }), 'seed is not 32 bytes'],
      [JSON.stringify({ ...good, publicKey: Buffer.alloc(32, 1).toString('base64') }), 'publicKey does not match'],
      [JSON.stringify({ ...good, peerId: '12D3KooWother' }), 'peerId does not match'],
      ['x'.repeat(10_000), 'bytes, not a fednode key file'],
    ];
    for (const [text, why] of corrupt) {
      await writeFile(path, text, { mode: 0o600 });
      await chmod(path, 0o600);
      try {
        await loadIdentity(path);
        expect.unreachable(why);
      } catch (err) {
        expect((err as CryptoError).code, why).toBe('ERR_KEY_FILE_CORRUPT');
        expect((err as Error).message).toContain(why);
      }
      expect(await readFile(path, 'utf8')).toBe(text); // nothing was rewritten or deleted
    }
  });

  it('rejects seeds and public keys of the wrong size', () => {
    expect(() => identityFromSeed(new Uint8Array(16))).toThrow(CryptoError);
    expect(() => peerIdFromPublicKey(new Uint8Array(33))).toThrow(/32 bytes/);
  });
});
