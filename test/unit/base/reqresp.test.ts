import { pushable } from 'it-pushable';
import { describe, expect, it } from 'vitest';
import { request, respond, type DuplexStream } from '../../../base/reqresp.js';

/** Two in-memory ends of one duplex: what one sinks, the other's source yields. abort ends both with the error. */
function pair(): { a: DuplexStream & { aborted: Error | null }; b: DuplexStream & { aborted: Error | null } } {
  const toA = pushable<Uint8Array>();
  const toB = pushable<Uint8Array>();
  const end = (e: Error): void => {
    toA.end(e);
    toB.end(e);
  };
  const side = (inbound: typeof toA, outbound: typeof toB): DuplexStream & { aborted: Error | null } => {
    const s = {
      aborted: null as Error | null,
      source: inbound,
      async sink(src: Iterable<Uint8Array> | AsyncIterable<Uint8Array>) {
        for await (const c of src) outbound.push(c.subarray());
        outbound.end();
      },
      abort(e: Error) {
        s.aborted = e;
        end(e);
      },
    };
    return s;
  };
  return { a: side(toA, toB), b: side(toB, toA) };
}

const limits = { maxInboundBytes: 1024, timeoutMs: 5_000, what: 'test' };

describe('base/reqresp: one bounded frame each way', () => {
  it('a request gets its answer', async () => {
    const { a, b } = pair();
    const served = respond(b, limits, (req) => Promise.resolve(req === null ? null : new Uint8Array([...req].reverse())));
    expect([...(await request(a, new Uint8Array([1, 2, 3]), limits))]).toEqual([3, 2, 1]);
    expect(await served).toBe(true);
  });

  it('an answer over the client bound fails the exchange and aborts the stream', async () => {
    const { a, b } = pair();
    void respond(b, limits, () => Promise.resolve(new Uint8Array(4096)));
    await expect(request(a, new Uint8Array([1]), limits)).rejects.toThrow();
    expect(a.aborted).not.toBeNull();
  });

  it('a request the server refuses (null) aborts the stream; the client hears no reply', async () => {
    const { a, b } = pair();
    const served = respond(b, limits, () => Promise.resolve(null));
    await expect(request(a, new Uint8Array([9]), limits)).rejects.toThrow();
    expect(await served).toBe(false);
    expect(b.aborted?.message).toMatch(/malformed request/);
  });

  it('a server that never answers: the client times out with ERR_REQRESP_TIMEOUT', async () => {
    const { a, b } = pair();
    void respond(b, { ...limits, timeoutMs: 60_000 }, () => new Promise<Uint8Array>(() => undefined));
    await expect(request(a, new Uint8Array([1]), { ...limits, timeoutMs: 50 })).rejects.toMatchObject({ code: 'ERR_REQRESP_TIMEOUT' });
    expect(a.aborted).toMatchObject({ code: 'ERR_REQRESP_TIMEOUT' });
  });
});
