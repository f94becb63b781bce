// node/forward/wire.ts: messages over 256 KiB travel as continuation frames; the receiver's
// deadline measures progress between frames, not the whole message.
import { describe, it, expect } from 'vitest';
import { pushable } from 'it-pushable';
import * as lp from 'it-length-prefixed';
import { collectMessage, encodeFrames, pushMessage, BATCH_BYTES, PART_BYTES, MAX_MESSAGE_BYTES } from '../../../node/forward/wire.js';
import type { Frame } from '../../../node/forward/wire.js';

async function drain(msg: Uint8Array): Promise<Frame[]> {
  const out = pushable<Uint8Array>();
  pushMessage(out, msg);
  out.end();
  const frames: Frame[] = [];
  for await (const f of out) {
    expect(f.byteLength).toBeLessThanOrEqual(PART_BYTES + 1);
    frames.push({ more: f[0] === 1, data: f.subarray(1) });
  }
  return frames;
}

const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 0xff);

describe('continuation frames', () => {
  it('a small message is one frame; a 4 MiB one is 16 parts that reassemble byte for byte', async () => {
    const small = await drain(bytes(10));
    expect(small).toHaveLength(1);
    expect(small[0]!.more).toBe(false);
    const big = bytes(4 * 1024 * 1024);
    const frames = await drain(big);
    expect(frames).toHaveLength(16);
    expect(frames.slice(0, -1).every((f) => f.more)).toBe(true);
    expect(frames[15]!.more).toBe(false);
    let i = 1;
    const got = await collectMessage(frames[0]!, () => Promise.resolve(frames[i++] ?? null), 1000);
    expect(got.ok).toBe(true);
    if (got.ok) expect(Buffer.from(got.bytes).equals(Buffer.from(big))).toBe(true);
  });

  it('the deadline is per frame: slow but steady progress passes, a stall is a timeout', async () => {
    const frames = await drain(bytes(PART_BYTES * 6));
    let i = 1;
    // each frame 40 ms after the previous, 6 frames: 200 ms in all, more than the 100 ms bound
    const steady = (): Promise<Frame | null> => new Promise((r) => setTimeout(() => r(frames[i++] ?? null), 40));
    const t0 = performance.now();
    const ok = await collectMessage(frames[0]!, steady, 100);
    expect(ok.ok).toBe(true);
    expect(performance.now() - t0).toBeGreaterThan(100);
    const stalled = await collectMessage(frames[0]!, () => new Promise<Frame | null>(() => undefined), 50);
    expect(stalled).toEqual({ ok: false, reason: 'timeout' });
  });

  it('a message over the bound is refused, a stream cut inside a message too', async () => {
    const more: Frame = { more: true, data: new Uint8Array(PART_BYTES) };
    const endless = await collectMessage(more, () => Promise.resolve(more), 1000, MAX_MESSAGE_BYTES);
    expect(endless).toEqual({ ok: false, reason: 'oversize' });
    expect(await collectMessage(more, () => Promise.resolve(null), 1000)).toEqual({ ok: false, reason: 'closed' });
  });
});

describe('encodeFrames: queued frames share one write', () => {
  const decodeAll = (chunks: Uint8Array[]): Uint8Array[] => {
    const out: Uint8Array[] = [];
    for (const f of lp.decode(chunks, { maxDataLength: PART_BYTES + 1 })) out.push(f.subarray());
    return out;
  };

  it('frames pushed in one turn come out as one chunk that decodes to the same frames in order', async () => {
    const src = pushable<Uint8Array>();
    src.push(bytes(5));
    src.push(bytes(40));
    src.push(bytes(3));
    src.end();
    const chunks: Uint8Array[] = [];
    for await (const c of encodeFrames(src)) chunks.push(c);
    expect(chunks).toHaveLength(1);
    expect(decodeAll(chunks)).toEqual([bytes(5), bytes(40), bytes(3)]);
  });

  it('a frame is written at once when nothing else is queued (never held back for company)', async () => {
    const src = pushable<Uint8Array>();
    const it = encodeFrames(src)[Symbol.asyncIterator]();
    src.push(bytes(7));
    const first = await it.next(); // resolves without any further push or end
    expect(decodeAll([first.value as Uint8Array])).toEqual([bytes(7)]);
    src.end();
    expect((await it.next()).done).toBe(true);
  });

  it('continuation parts are not joined into writes over the batch bound', async () => {
    const src = pushable<Uint8Array>();
    pushMessage(src, bytes(3 * PART_BYTES));
    src.end();
    const chunks: Uint8Array[] = [];
    for await (const c of encodeFrames(src)) chunks.push(c);
    expect(chunks).toHaveLength(3);
    for (const c of chunks) expect(c.byteLength).toBeLessThan(PART_BYTES + BATCH_BYTES);
    const frames = decodeAll(chunks);
    expect(frames.map((f) => f[0])).toEqual([1, 1, 0]);
  });
});
