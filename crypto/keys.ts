/**
 * The node's identity: ONE Ed25519 key that is both its libp2p key (so its
 * PeerId names it on the wire) and the signer of every envelope it makes.
 *
 * Key file: JSON `{version, type, seed, publicKey, peerId}` (base64), mode 0600,
 * written atomically (temp file, fsync, rename, fsync of the directory) so a
 * crash never leaves a half-written key. Loading refuses a key readable by group
 * or others (as ssh does) and names what is wrong with a corrupt file.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { writeFileDurable as writeDurable } from '../base/durable-write.js';
import { dirname } from 'node:path';
import { privateKeyFromRaw, publicKeyFromRaw } from '@libp2p/crypto/keys';
import { peerIdFromPublicKey as libp2pPeerIdFromPublicKey } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';
import { CryptoError } from './errors.js';
import { bytesEqual } from './cbor.js';
import { latin1Key } from './cbor-fast.js';
import { PUBLIC_KEY_BYTES, publicKeyFromSeed } from './ed25519.js';

export interface Identity {
  readonly publicKey: Uint8Array; // 32 bytes
  readonly secretKey: Uint8Array; // 64 bytes: seed || publicKey
  readonly peerId: string;
}

export const SEED_BYTES = 32;
const KEY_FILE_VERSION = 1;
/** A key file is ~250 bytes; anything over 4 KiB is not one of ours. */
const KEY_FILE_MAX_BYTES = 4096;

export function identityFromSeed(seed: Uint8Array): Identity {
  if (seed.byteLength !== SEED_BYTES) {
    throw new CryptoError('ERR_KEY_INVALID', `Ed25519 seed must be ${SEED_BYTES} bytes, got ${seed.byteLength}`, { length: seed.byteLength });
  }
  const publicKey = publicKeyFromSeed(seed);
  const secretKey = new Uint8Array(64);
  secretKey.set(seed, 0);
  secretKey.set(publicKey, 32);
  return Object.freeze({ publicKey, secretKey, peerId: peerIdFromPublicKey(publicKey) });
}

export function generateIdentity(): Identity {
  return identityFromSeed(new Uint8Array(randomBytes(SEED_BYTES)));
}

// Deriving a PeerId string costs a protobuf encode and base58; envelopes name
// their signer by public key, so the mapping is cached. Bound: member keys in
// use plus churn (see ed25519.ts KEY_CACHE_MAX for the same reasoning).
const PEER_ID_CACHE_MAX = 1024;
const peerIds = new Map<string, string>();

/** The libp2p PeerId string (12D3Koo…) of a raw 32-byte Ed25519 public key. */
export function peerIdFromPublicKey(publicKey: Uint8Array): string {
  if (publicKey.byteLength !== PUBLIC_KEY_BYTES) {
    throw new CryptoError('ERR_KEY_INVALID', `Ed25519 public key must be ${PUBLIC_KEY_BYTES} bytes, got ${publicKey.byteLength}`, {});
  }
  const k = latin1Key(publicKey);
  let id = peerIds.get(k);
  if (id === undefined) {
    id = libp2pPeerIdFromPublicKey(publicKeyFromRaw(publicKey)).toString();
    if (peerIds.size >= PEER_ID_CACHE_MAX) {
      const oldest = peerIds.keys().next().value;
      if (oldest !== undefined) peerIds.delete(oldest);
    }
    peerIds.set(k, id);
  }
  return id;
}

/** The same key as a libp2p PrivateKey, so the libp2p PeerId IS the signer. */
export function toLibp2pPrivateKey(id: Identity): PrivateKey {
  return privateKeyFromRaw(id.secretKey);
}

export interface SaveOptions {
  /** Replace an existing key file (never done implicitly: it changes the node's identity). */
  overwrite?: boolean;
}

export async function saveIdentity(path: string, id: Identity, opts: SaveOptions = {}): Promise<void> {
  if (opts.overwrite !== true) {
    const exists = await stat(path).then(
      () => true,
      () => false,
    );
    if (exists) throw new CryptoError('ERR_KEY_FILE_EXISTS', `key file ${path} already exists; refusing to replace this node's identity`, { path });
  }
  const doc = {
    version: KEY_FILE_VERSION,
    type: 'ed25519',
    seed: Buffer.from(id.secretKey.subarray(0, 32)).toString('base64'),
    publicKey: Buffer.from(id.publicKey).toString('base64'),
    peerId: id.peerId,
  };
  await writeFileDurable(path, JSON.stringify(doc, null, 2) + '\n', 0o600);
}

/** The durable write (base/durable-write.ts), creating the key's directory 0700 first. */
export async function writeFileDurable(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeDurable(path, data, { mode });
}

export async function loadIdentity(path: string): Promise<Identity> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    throw new CryptoError('ERR_KEY_FILE_MISSING', `key file ${path} not found (run \`fednode init\` first)`, { path }, { cause: err });
  }
  if ((st.mode & 0o077) !== 0) {
    throw new CryptoError(
      'ERR_KEY_FILE_PERMISSIONS',
      `key file ${path} is readable by others (mode ${(st.mode & 0o777).toString(8)}); fix with: chmod 600 ${path}`,
      { path, mode: st.mode & 0o777 },
    );
  }
  if (st.size > KEY_FILE_MAX_BYTES) {
    throw new CryptoError('ERR_KEY_FILE_CORRUPT', `key file ${path} is ${st.size} bytes, not a fednode key file`, { path });
  }
  const text = await readFile(path, 'utf8');
  const corrupt = (why: string): CryptoError => new CryptoError('ERR_KEY_FILE_CORRUPT', `key file ${path} is corrupt: ${why}`, { path, why });
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw corrupt('not valid JSON');
  }
  if (doc === null || typeof doc !== 'object') throw corrupt('not a JSON object');
  const d = doc as Record<string, unknown>;
  if (d['version'] !== KEY_FILE_VERSION) throw corrupt(`unsupported version ${JSON.stringify(d['version'])}`);
  if (d['type'] !== 'ed25519') throw corrupt(`unsupported key type ${JSON.stringify(d['type'])}`);
  if (typeof d['seed'] !== 'string' || typeof d['publicKey'] !== 'string') throw corrupt('seed and publicKey must be base64 strings');
  const seed = Buffer.from(d['seed'], 'base64');
  if (seed.byteLength !== SEED_BYTES || seed.toString('base64') !== d['seed']) throw corrupt('seed is not 32 bytes of base64');
  const id = identityFromSeed(new Uint8Array(seed));
  if (!bytesEqual(id.publicKey, Buffer.from(d['publicKey'], 'base64'))) throw corrupt('publicKey does not match the seed');
  if (d['peerId'] !== undefined && d['peerId'] !== id.peerId) throw corrupt('peerId does not match the key');
  return id;
}
