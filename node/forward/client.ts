/**
 * Requesting side of `/fednode/infer/2.0.0` (frames: wire.ts, server side: server.ts).
 * chat/complete yield deltas then a 'done' with servedBy; embed yields one result.
 * Streams are kept alive and reused for the next request to the same peer (bounded
 * pool); a stale pooled stream is replaced transparently once.
 */
import { pipe } from 'it-pipe';
import { pushable } from 'it-pushable';
import type { Pushable } from 'it-pushable';
import type { Stream } from '@libp2p/interface';
import { createEnvelope, decodeCanonical } from '../../crypto/index.js';
import type { Identity } from '../../crypto/index.js';
import type { ChatChunk, ChatRequest, CompletionRequest, EmbedRequest, EmbedResult, FinishReason, TokenLogprob, ToolCallDelta } from '../backends/types.js';
import { InferError, WIRE_ERROR_CODES } from './errors.js';
import type { InferErrorCode } from './errors.js';
import { INFER_PROTOCOL, INFER_REQUEST_KIND } from './request.js';
import type { InferOp, InferRequestBody } from './request.js';
import type { ForwardHost } from './server.js';
import { collectMessage, encodeFrames, frameReader, pushMessage, MAX_MESSAGE_BYTES } from './wire.js';
import type { Frame } from './wire.js';

/**
 * Default bound of streams open to one peer (libp2p's own default), and so of the idle ones kept
 * for reuse (keep-alive pool). The pool holds as many as may be open at once: a smaller pool
 * (it was 16) closed and reopened a stream for most requests above that concurrency (at 256
 * streams, 2,216 opened for 3,010 requests), each open costing a yamux stream, protocol select
 * and a peer-store write on both nodes. Idle ones cost the server one inbound slot each (its
 * maxInboundStreams is 2x its maxConcurrent) and are closed by it after its idle timeout.
 */
export const DEFAULT_MAX_STREAMS_PER_PEER = 64;

/** Chunks of a forwarded (or routed) stream: the 'done' carries the serving node. */
export type ServedChunk = Extract<ChatChunk, { type: 'delta' }> | (Extract<ChatChunk, { type: 'done' }> & { servedBy: string });
/** An embeddings result and who computed it. */
export type ServedEmbedding = EmbedResult & { type: 'embedding'; servedBy: string };

export interface ForwardClientOptions {
  host: ForwardHost;
  identity: Identity;
  cluster: string;
  /**
   * Streams of this protocol open to one peer at once (libp2p refuses more; its default is 64).
   * Set it to the router's maxPerPeer so that bound, not libp2p's, decides. Also the bound of
   * idle streams kept per peer for reuse. @default 64 (DEFAULT_MAX_STREAMS_PER_PEER)
   */
  maxOutboundStreams?: number;
  now?: () => number;
}

export interface ForwardCallOptions {
  requestId: string;
  deadlineMs: number;
  signal?: AbortSignal;
}

interface Channel {
  stream: Stream;
  out: Pushable<Uint8Array>;
  read: () => Promise<Frame | null>;
}

const FINISH: ReadonlySet<string> = new Set(['stop', 'length', 'tool_calls', 'content_filter']);

function unpackVectors(d: Uint8Array, w: number): number[][] {
  if (w <= 0 || d.byteLength % (8 * w) !== 0) throw new InferError('ERR_FORWARD_PROTOCOL', `embedding bytes (${d.byteLength}) are not rows of ${w} float64`);
  const copy = new Uint8Array(d); // aligned copy for Float64Array
  const f = new Float64Array(copy.buffer, 0, copy.byteLength / 8);
  const out: number[][] = [];
  for (let i = 0; i < f.length; i += w) out.push(Array.from(f.subarray(i, i + w)));
  return out;
}

function parseJsonField<T>(x: unknown, what: string, peerId: string): T | undefined {
  if (x === undefined) return undefined;
  if (typeof x !== 'string') throw new InferError('ERR_FORWARD_PROTOCOL', `${what} from ${peerId} is not JSON text`, { peerId });
  try {
    return JSON.parse(x) as T;
  } catch {
    throw new InferError('ERR_FORWARD_PROTOCOL', `${what} from ${peerId} is not valid JSON`, { peerId });
  }
}

export class ForwardClient {
  private seq = 0;
  private readonly now: () => number;
  private readonly idle = new Map<string, Channel[]>();
  /** Streams opened, requests sent on a kept-alive stream, stale pooled streams replaced. */
  readonly stats = { opened: 0, reused: 0, staleReplaced: 0 };
  private readonly maxStreams: number;
  constructor(private readonly opts: ForwardClientOptions) {
    this.now = opts.now ?? Date.now;
    this.maxStreams = opts.maxOutboundStreams ?? DEFAULT_MAX_STREAMS_PER_PEER;
  }

  private async open(peerId: string, signal: AbortSignal | undefined): Promise<Channel> {
    const max = { negotiateFully: false, maxOutboundStreams: this.maxStreams };
    const stream = await this.opts.host.dialProtocol(peerId, INFER_PROTOCOL, signal === undefined ? max : { signal, ...max });
    this.stats.opened++;
    const out = pushable<Uint8Array>();
    void pipe(out, encodeFrames, stream.sink).catch(() => undefined);
    return { stream, out, read: frameReader(stream) };
  }

  private takeIdle(peerId: string): Channel | null {
    const list = this.idle.get(peerId);
    while (list !== undefined && list.length > 0) {
      const ch = list.pop()!;
      if (ch.stream.status === 'open' && ch.stream.writeStatus !== 'closed' && ch.stream.readStatus !== 'closed') return ch;
    }
    return null;
  }

  private putIdle(peerId: string, ch: Channel): void {
    const list = this.idle.get(peerId) ?? [];
    if (list.length >= this.maxStreams || ch.stream.status !== 'open') {
      this.discard(ch);
      return;
    }
    list.push(ch);
    this.idle.set(peerId, list);
  }

  private discard(ch: Channel, abort = false): void {
    if (abort) ch.stream.abort(new InferError('ERR_ABORTED', 'request cancelled by the requester'));
    else {
      ch.out.end();
      void ch.stream.close().catch(() => undefined);
    }
  }

  /** Closes the kept-alive streams (node shutdown). */
  close(): void {
    for (const list of this.idle.values()) for (const ch of list) this.discard(ch);
    this.idle.clear();
  }

  async *chat(peerId: string, req: ChatRequest, call: ForwardCallOptions): AsyncIterable<ServedChunk> {
    yield* this.generation(peerId, 'chat', req, call);
  }

  async *complete(peerId: string, req: CompletionRequest, call: ForwardCallOptions): AsyncIterable<ServedChunk> {
    yield* this.generation(peerId, 'complete', req, call);
  }

  async *embed(peerId: string, req: EmbedRequest, call: ForwardCallOptions): AsyncIterable<ServedEmbedding> {
    for await (const f of this.exchange(peerId, 'embed', req.model, req, call)) {
      if (f['t'] !== 'v' || !(f['d'] instanceof Uint8Array) || typeof f['w'] !== 'number') throw new InferError('ERR_FORWARD_PROTOCOL', `unexpected frame from ${peerId} for embeddings`, { peerId, afterFirstToken: false });
      yield { type: 'embedding', vectors: unpackVectors(f['d'], f['w']), promptTokens: typeof f['p'] === 'number' ? f['p'] : 0, servedBy: typeof f['s'] === 'string' ? f['s'] : peerId };
      return;
    }
  }

  private async *generation(peerId: string, op: 'chat' | 'complete', req: ChatRequest | CompletionRequest, call: ForwardCallOptions): AsyncIterable<ServedChunk> {
    for await (const f of this.exchange(peerId, op, req.model, req, call)) {
      if (f['t'] === 'c' && typeof f['c'] === 'string') {
        const toolCalls = parseJsonField<ToolCallDelta[]>(f['k'], 'tool calls', peerId);
        const logprobs = parseJsonField<TokenLogprob[]>(f['l'], 'logprobs', peerId);
        yield { type: 'delta', content: f['c'], ...(toolCalls === undefined ? {} : { toolCalls }), ...(logprobs === undefined ? {} : { logprobs }) };
      } else if (f['t'] === 'e') {
        const n = (k: string): number => (typeof f[k] === 'number' ? f[k] : 0);
        const r = f['r'];
        const finishReason: FinishReason = typeof r === 'string' && FINISH.has(r) ? (r as FinishReason) : 'stop';
        yield {
          type: 'done',
          finishReason,
          usage: { promptTokens: n('p'), completionTokens: n('n') },
          timings: { firstTokenMs: typeof f['f'] === 'number' ? f['f'] : null, totalMs: n('m') },
          servedBy: typeof f['s'] === 'string' ? f['s'] : peerId,
        };
        return;
      } else {
        throw new InferError('ERR_FORWARD_PROTOCOL', `unknown frame type from ${peerId}`, { peerId, afterFirstToken: true });
      }
    }
  }

  /**
   * Sends one request and yields the server's decoded frames up to and including the
   * terminal one; an error frame is thrown as InferError (`data.afterFirstToken` true once
   * a frame came: no failover possible then).
   */
  private async *exchange(peerId: string, op: InferOp, model: string, request: unknown, call: ForwardCallOptions): AsyncGenerator<Record<string, unknown>> {
    const signal = call.signal;
    const aborted = (): boolean => signal?.aborted === true;
    if (aborted()) throw new InferError('ERR_ABORTED', 'request aborted', { peerId, afterFirstToken: false });
    const body: InferRequestBody = { requestId: call.requestId, model, deadlineMs: Math.floor(call.deadlineMs), hop: 1, op, request: JSON.stringify(request) };
    const header = createEnvelope(this.opts.identity, { kind: INFER_REQUEST_KIND, cluster: this.opts.cluster, seq: ++this.seq, time: Math.floor(this.now()), body });
    if (header.byteLength > MAX_MESSAGE_BYTES) throw new InferError('ERR_FORWARD_REFUSED', `request of ${header.byteLength} bytes exceeds the forwarding limit of ${MAX_MESSAGE_BYTES}`, { peerId, afterFirstToken: false });
    let ch = this.takeIdle(peerId);
    let reused = ch !== null;
    if (reused) this.stats.reused++;
    const openFresh = async (): Promise<Channel> => {
      try {
        return await this.open(peerId, signal);
      } catch (err) {
        throw new InferError(aborted() ? 'ERR_ABORTED' : 'ERR_FORWARD_REFUSED', `cannot open ${INFER_PROTOCOL} to ${peerId}: ${(err as Error).message}`, { peerId, afterFirstToken: false, transport: true }, { cause: err });
      }
    };
    ch ??= await openFresh();
    let current: Channel = ch;
    const onAbort = (): void => current.stream.abort(new InferError('ERR_ABORTED', 'request aborted by the requester'));
    signal?.addEventListener('abort', onAbort, { once: true });
    let yielded = false;
    let gotFrame = false;
    let complete = false;
    // A reused stream that fails before its first frame was stale: replace it once.
    const canRetryStale = (): boolean => reused && !gotFrame && !aborted();
    try {
      pushMessage(current.out, header);
      for (;;) {
        const first = await current.read();
        if (first === null) {
          if (canRetryStale()) {
            this.stats.staleReplaced++;
            this.discard(current, true);
            reused = false;
            current = await openFresh();
            pushMessage(current.out, header);
            continue;
          }
          throw new InferError(aborted() ? 'ERR_ABORTED' : 'ERR_FORWARD_PROTOCOL', `stream to ${peerId} ended without a trailer`, { peerId, afterFirstToken: yielded, transport: !gotFrame });
        }
        gotFrame = true;
        const msg = await collectMessage(first, current.read, Infinity, MAX_MESSAGE_BYTES);
        if (!msg.ok) throw new InferError(aborted() ? 'ERR_ABORTED' : 'ERR_FORWARD_PROTOCOL', `reply from ${peerId} cut: ${msg.reason}`, { peerId, afterFirstToken: yielded });
        let f: Record<string, unknown>;
        try {
          f = decodeCanonical(msg.bytes, MAX_MESSAGE_BYTES) as Record<string, unknown>;
        } catch (err) {
          throw new InferError('ERR_FORWARD_PROTOCOL', `bad frame from ${peerId}: ${(err as Error).message}`, { peerId, afterFirstToken: yielded });
        }
        if (typeof f !== 'object' || f === null) throw new InferError('ERR_FORWARD_PROTOCOL', `frame from ${peerId} is not a map`, { peerId, afterFirstToken: yielded });
        if (f['t'] === 'x') {
          const code = typeof f['code'] === 'string' ? f['code'] : 'ERR_FORWARD_PROTOCOL';
          const known = WIRE_ERROR_CODES.has(code as InferErrorCode) ? (code as InferErrorCode) : 'ERR_BACKEND';
          throw new InferError(known, `${peerId} refused or failed: ${String(f['msg'])}`, {
            peerId,
            remoteCode: code,
            afterFirstToken: yielded || f['first'] === true,
            ...(typeof f['st'] === 'number' ? { status: f['st'] } : {}),
            ...(typeof f['uc'] === 'string' ? { upstreamCode: f['uc'] } : {}),
            ...(typeof f['ut'] === 'string' ? { upstreamType: f['ut'] } : {}),
            ...(typeof f['up'] === 'string' ? { param: f['up'] } : {}),
          });
        }
        const terminal = f['t'] === 'e' || f['t'] === 'v';
        if (terminal) complete = true;
        yielded = true;
        yield f;
        if (terminal) return;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      // Complete: keep the stream for the next request. Otherwise reset it (cancels the server side).
      if (complete) this.putIdle(peerId, current);
      else this.discard(current, true);
    }
  }
}
