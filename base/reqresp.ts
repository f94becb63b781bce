/**
 * One bounded, framed request/response over a duplex byte stream (libp2p's stream shape, but
 * any duplex of byte chunks): one length-prefixed frame each way (unsigned-varint prefix,
 * it-length-prefixed), a byte bound on each frame and a timeout on the whole exchange that
 * aborts the stream. Used by the consensus catch-up (node/consensus/sync.ts) and the member
 * claims exchange (node/runtime/member-sync.ts), as Lodestar's ReqResp owns framing and
 * timeouts for every protocol. Handlers see bytes only; decoding is theirs.
 */
import * as lp from 'it-length-prefixed';
import { FednodeError } from './errors.js';

export type ReqRespErrorCode = 'ERR_REQRESP_TIMEOUT' | 'ERR_REQRESP_NO_REPLY' | 'ERR_REQRESP_BAD_FRAME';

export class ReqRespError extends FednodeError<ReqRespErrorCode> {
  constructor(code: ReqRespErrorCode, message: string, data: Record<string, unknown> = {}) {
    super(code, message, data);
    this.name = 'ReqRespError';
  }
}

/** A chunk as a stream yields it: bytes, or a list of byte slices with `subarray()` (Uint8ArrayList). */
export type Chunk = Uint8Array | { subarray(): Uint8Array };

/** The duplex this layer needs (a libp2p Stream is one). */
export interface DuplexStream {
  readonly source: AsyncIterable<Chunk>;
  sink(source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<void>;
  abort(err: Error): void;
}

export interface FrameLimits {
  /** Largest frame accepted from the other side (bytes); a larger one fails the exchange. */
  readonly maxInboundBytes: number;
  /** The whole exchange must finish within this (ms); the stream is aborted otherwise. */
  readonly timeoutMs: number;
  /** Names the exchange in errors (a protocol id or a peer). */
  readonly what: string;
}

async function readOne(stream: DuplexStream, maxBytes: number): Promise<Uint8Array | null> {
  // it-length-prefixed reads Uint8ArrayList chunks; Uint8Array chunks are accepted as they are.
  for await (const m of lp.decode(stream.source as AsyncIterable<Uint8Array>, { maxDataLength: maxBytes })) return m.subarray();
  return null;
}

async function withTimeout<T>(stream: DuplexStream, l: FrameLimits, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new ReqRespError('ERR_REQRESP_TIMEOUT', `${l.what}: exchange took longer than ${l.timeoutMs} ms`, { ms: l.timeoutMs });
      stream.abort(err);
      reject(err);
    }, l.timeoutMs);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const asError = (err: unknown): Error => (err instanceof Error ? err : new ReqRespError('ERR_REQRESP_BAD_FRAME', String(err)));

/** Client side: send one request frame, read one response frame. Aborts the stream on any failure. */
export async function request(stream: DuplexStream, req: Uint8Array, l: FrameLimits): Promise<Uint8Array> {
  try {
    return await withTimeout(
      stream,
      l,
      (async () => {
        await stream.sink(lp.encode([req]));
        const reply = await readOne(stream, l.maxInboundBytes);
        if (reply === null) throw new ReqRespError('ERR_REQRESP_NO_REPLY', `${l.what}: the peer closed the stream without a reply`);
        return reply;
      })(),
    );
  } catch (err) {
    stream.abort(asError(err));
    throw err;
  }
}

/**
 * Server side: read one request frame, answer it. `answer` returns the response bytes, or null
 * to refuse (a malformed request: the stream is aborted). Resolves false when the exchange failed.
 */
export async function respond(stream: DuplexStream, l: FrameLimits, answer: (req: Uint8Array | null) => Promise<Uint8Array | null>): Promise<boolean> {
  try {
    return await withTimeout(
      stream,
      l,
      (async () => {
        const req = await readOne(stream, l.maxInboundBytes);
        const reply = await answer(req);
        if (reply === null) {
          stream.abort(new ReqRespError('ERR_REQRESP_BAD_FRAME', `${l.what}: malformed request`));
          return false;
        }
        await stream.sink(lp.encode([reply]));
        return true;
      })(),
    );
  } catch (err) {
    stream.abort(asError(err));
    return false;
  }
}
