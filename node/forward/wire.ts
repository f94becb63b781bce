/**
 * Framing of the forwarding protocol. Every length-prefixed frame is at most
 * PART_BYTES + 1: one flag byte (0 = last frame of a message, 1 = more follow) and up to
 * PART_BYTES of the message. A message larger than one part (a 4 MiB prompt, a batch of
 * embeddings) travels as continuation frames, so no single frame is large and the
 * receiver's deadline measures progress (time between frames), not the whole message.
 */
import * as lp from 'it-length-prefixed';
import type { Pushable } from 'it-pushable';
import type { Stream } from '@libp2p/interface';

/** Bytes of a message per frame: yamux moves 256 KiB windows; a frame never waits on more than one. */
export const PART_BYTES = 256 * 1024;
/**
 * Largest message either way: the API takes request bodies up to 4 MiB of JSON; its
 * internal re-encoding plus the envelope stays under 8 MiB. Bounds memory per stream.
 */
export const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

const LAST = 0;
const MORE = 1;

export interface Frame {
  more: boolean;
  data: Uint8Array;
}

/** Pushes `msg` as one frame or as continuation frames. */
export function pushMessage(out: Pushable<Uint8Array>, msg: Uint8Array): void {
  if (msg.byteLength <= PART_BYTES) {
    out.push(withFlag(LAST, msg));
    return;
  }
  for (let at = 0; at < msg.byteLength; at += PART_BYTES) {
    const end = Math.min(msg.byteLength, at + PART_BYTES);
    out.push(withFlag(end === msg.byteLength ? LAST : MORE, msg.subarray(at, end)));
  }
}

function withFlag(flag: number, part: Uint8Array): Uint8Array {
  const f = new Uint8Array(part.byteLength + 1);
  f[0] = flag;
  f.set(part, 1);
  return f;
}

/**
 * Queued frames are joined into one write while it is under this size: small frames (text,
 * trailers, requests) join; a continuation part of 256 KiB goes alone. Bounds the extra copy.
 */
export const BATCH_BYTES = 64 * 1024;

/**
 * Length-prefixes the frames of `source`, joining those already queued into one chunk for the
 * stream's sink: a chunk is one yamux data frame, one noise encryption and one socket write, so
 * a reply's last text frame and its trailer (pushed in the same turn) cost one of each, not two.
 * Frames are never held back waiting for more (no added latency): only what is queued is joined.
 */
export async function* encodeFrames(source: Pushable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const frame of source) {
    const enc = lp.encode.single(frame).subarray();
    parts.push(enc);
    size += enc.byteLength;
    if (source.readableLength > 0 && size < BATCH_BYTES) continue;
    yield parts.length === 1 ? enc : concat(parts, size);
    parts.length = 0;
    size = 0;
  }
}

function concat(parts: readonly Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/**
 * A frame reader that never rejects: null = the stream ended, was reset, sent an
 * oversize frame or a frame without a valid flag.
 */
export function frameReader(stream: Pick<Stream, 'source'>): () => Promise<Frame | null> {
  const frames = lp.decode(stream.source, { maxDataLength: PART_BYTES + 1 })[Symbol.asyncIterator]();
  return () =>
    frames.next().then(
      (r) => {
        if (r.done === true) return null;
        const b = r.value.subarray();
        if (b.byteLength === 0 || (b[0] !== LAST && b[0] !== MORE)) return null;
        return { more: b[0] === MORE, data: b.subarray(1) };
      },
      () => null,
    );
}

export type Collected = { ok: true; bytes: Uint8Array } | { ok: false; reason: 'timeout' | 'closed' | 'oversize' };

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  if (!Number.isFinite(ms)) return p;
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Assembles a message starting with `first`: each further frame must arrive within
 * `progressMs` of the previous one (Infinity = no bound: the caller's deadline rules).
 */
export async function collectMessage(first: Frame, read: () => Promise<Frame | null>, progressMs: number, maxBytes = MAX_MESSAGE_BYTES): Promise<Collected> {
  if (!first.more) return { ok: true, bytes: first.data };
  const parts: Uint8Array[] = [first.data];
  let size = first.data.byteLength;
  let f: Frame = first;
  while (f.more) {
    const next = await withTimeout(read(), progressMs);
    if (next === 'timeout') return { ok: false, reason: 'timeout' };
    if (next === null) return { ok: false, reason: 'closed' };
    size += next.data.byteLength;
    if (size > maxBytes) return { ok: false, reason: 'oversize' };
    parts.push(next.data);
    f = next;
  }
  return { ok: true, bytes: concat(parts, size) };
}

export { withTimeout };
