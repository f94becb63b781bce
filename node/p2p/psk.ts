/**
 * The cluster's pre-shared key in the swarm.key format that @libp2p/pnet (and go-ipfs)
 * read: three lines, `/key/swarm/psk/1.0.0/`, `/base16/`, 64 hex digits (32 bytes).
 * A node without this key cannot complete a connection with any member: pnet wraps
 * the raw TCP stream in XSalsa20 before noise even starts.
 */
import { randomBytes } from 'node:crypto';
import { P2pError } from './errors.js';

export const SWARM_KEY_HEADER = '/key/swarm/psk/1.0.0/';
export const SWARM_KEY_CODEC = '/base16/';
/** XSalsa20 key length used by @libp2p/pnet. */
export const SWARM_KEY_BYTES = 32;
/** A swarm.key file is 95 bytes; anything over this bound is not a key (refuse before parsing). */
const SWARM_KEY_FILE_MAX_BYTES = 256;

/** swarm.key file bytes for the given 32-byte key. */
export function formatSwarmKey(key32: Uint8Array): Uint8Array {
  if (key32.length !== SWARM_KEY_BYTES) {
    throw new P2pError('ERR_PSK_INVALID', `pre-shared key must be ${SWARM_KEY_BYTES} bytes, got ${key32.length}`, { length: key32.length });
  }
  const hex = Buffer.from(key32).toString('hex');
  return new TextEncoder().encode(`${SWARM_KEY_HEADER}\n${SWARM_KEY_CODEC}\n${hex}`);
}

/** A fresh random cluster key, as swarm.key file bytes. */
export function generateSwarmKey(): Uint8Array {
  return formatSwarmKey(new Uint8Array(randomBytes(SWARM_KEY_BYTES)));
}

/**
 * Parse and normalise swarm.key file contents (trailing newline / CRLF accepted).
 * Throws ERR_PSK_INVALID with `data.reason` naming the line that is wrong.
 */
export function parseSwarmKey(text: Uint8Array | string): Uint8Array {
  const size = typeof text === 'string' ? text.length : text.length;
  if (size > SWARM_KEY_FILE_MAX_BYTES) {
    throw new P2pError('ERR_PSK_INVALID', `swarm key is ${size} bytes; a swarm.key file is under ${SWARM_KEY_FILE_MAX_BYTES}`, { reason: 'oversize', size });
  }
  const s = typeof text === 'string' ? text : new TextDecoder('utf-8', { fatal: false }).decode(text);
  const lines = s.split(/\r?\n/);
  while (lines.length > 3 && lines[lines.length - 1] === '') lines.pop();
  if (lines.length !== 3) {
    throw new P2pError('ERR_PSK_INVALID', `swarm key must have 3 lines (${SWARM_KEY_HEADER}, ${SWARM_KEY_CODEC}, 64 hex digits), got ${lines.length}`, { reason: 'lines', lines: lines.length });
  }
  const [header, codec, hex] = lines as [string, string, string];
  if (header.trim() !== SWARM_KEY_HEADER) {
    throw new P2pError('ERR_PSK_INVALID', `swarm key line 1 must be ${SWARM_KEY_HEADER}`, { reason: 'header' });
  }
  if (codec.trim() !== SWARM_KEY_CODEC) {
    throw new P2pError('ERR_PSK_INVALID', `swarm key line 2 must be ${SWARM_KEY_CODEC} (only base16 is supported)`, { reason: 'codec' });
  }
  const h = hex.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(h)) {
    throw new P2pError('ERR_PSK_INVALID', 'swarm key line 3 must be exactly 64 hex digits (32 bytes)', { reason: 'key', length: h.length });
  }
  return formatSwarmKey(new Uint8Array(Buffer.from(h, 'hex')));
}
