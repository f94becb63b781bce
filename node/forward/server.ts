/**
 * Serving side of `/fednode/infer/2.0.0`. One request at a time per stream; the stream is
 * kept for the requester's next request (as HTTP keep-alive).
 *
 *   requester -> server : message 1 = signed envelope, kind 'infer-request' (wire.ts frames;
 *                         continuation frames when over 256 KiB), body request.ts
 *                         InferRequestBody; then the requester keeps its write side open:
 *                         closing, resetting or any frame cancels the request.
 *   server -> requester : { t: 'c', c: text, k?: JSON tool-call deltas, l?: JSON logprobs }*
 *                         then ONE of { t: 'e', r, p, n, f, m, s }            (trailer)
 *                                     { t: 'v', d: f64 LE bytes, w, p, s }    (embeddings)
 *                                     { t: 'x', code, msg, first, st?, uc?, ut?, up? } (error)
 *
 * Frames are deterministic CBOR. Checks, cheapest first: remote peer is a member; request
 * message within the progress deadline and the size bound; inbound concurrency bound;
 * envelope decode/kind/cluster/signature; signer == remote peer; signer is a member; body
 * schema; hop == 1; deadline not passed. A forwarded request is executed locally only.
 */
import { pipe } from 'it-pipe';
import { pushable } from 'it-pushable';
import type { Stream } from '@libp2p/interface';
import { openEnvelope, encodeCanonical, VerifiedCache } from '../../crypto/index.js';
import type { Logger } from '../log.js';
import { nullLogger } from '../log.js';
import { WarnLimiter } from '../warn-limiter.js';
import type { ChatChunk, ChatRequest, CompletionRequest, EmbedRequest, EmbedResult } from '../backends/types.js';
import { InferError, toInferError, upstreamData } from './errors.js';
import { INFER_PROTOCOL, INFER_REQUEST_KIND, MAX_HOPS, parseRequestBody } from './request.js';
import type { ParsedRequest } from './request.js';
import { collectMessage, encodeFrames, frameReader, pushMessage, withTimeout, MAX_MESSAGE_BYTES, PART_BYTES } from './wire.js';
import type { Frame } from './wire.js';

/** Requests carried by one stream before it is closed (bounds a stream's lifetime; reopening is cheap). */
export const MAX_REQUESTS_PER_STREAM = 10_000;

/** The node's local execution (router.executeLocal*): never forwards. */
export interface ForwardExecutor {
  chat(req: ChatRequest, signal: AbortSignal): AsyncIterable<ChatChunk>;
  complete(req: CompletionRequest, signal: AbortSignal): AsyncIterable<ChatChunk>;
  embed(req: EmbedRequest, signal: AbortSignal): Promise<EmbedResult>;
}

/** The small part of a libp2p host this module needs (node/p2p Host satisfies it). */
export interface ForwardHost {
  handle(protocol: string, handler: (stream: Stream, remotePeerId: string) => void, opts?: { maxInboundStreams?: number; maxOutboundStreams?: number }): Promise<void>;
  /** negotiateFully: false lets libp2p send the protocol id with the first frame (saves a round trip). */
  dialProtocol(peerId: string, protocol: string, opts?: { signal?: AbortSignal; negotiateFully?: boolean; maxOutboundStreams?: number }): Promise<Stream>;
  unhandle?(protocol: string): Promise<void>;
}

export interface ForwardServerOptions {
  host: ForwardHost;
  cluster: string;
  /** Current membership (the p2p host's MemberSource.isMember). */
  isMember: (peerId: string) => boolean;
  /** Runs requests on THIS node's backends only. */
  execute: ForwardExecutor;
  /** Name put in trailers as served_by (this node's peer id). */
  localPeerId: string;
  /** Inbound forwarded requests running at once; more get an ERR_BUSY frame. @default 64 */
  maxConcurrent?: number;
  /**
   * Streams of this protocol this node opens to one peer at once. libp2p takes that bound from the
   * handler's registration when there is one (a dial's own option is then ignored), so it is set
   * here; make it the router's maxPerPeer so the router's bound, not libp2p's, refuses. @default 64 (libp2p's)
   */
  maxOutboundStreams?: number;
  /** Longest wait for the first frame of a request and between its frames (progress, not the whole body). @default 5000 */
  headerTimeoutMs?: number;
  /** A kept-alive stream with no new request for this long is closed. @default 30000 */
  idleTimeoutMs?: number;
  now?: () => number;
  logger?: Logger;
  verifyCache?: VerifiedCache;
}

export interface ForwardServer {
  readonly active: number;
  /** Counts of refused streams by reason (for tests and metrics). */
  readonly refused: Readonly<Record<string, number>>;
  stop(): Promise<void>;
}

function errorFrame(code: string, msg: string, extra: Record<string, unknown> = {}): Uint8Array {
  return encodeCanonical({ t: 'x', code, msg, ...extra });
}

/** Embedding vectors as little-endian float64 bytes (exact, and 8 bytes a value against ~19 as JSON text). */
export function packVectors(vectors: readonly number[][]): { d: Uint8Array; w: number } {
  const w = vectors[0]?.length ?? 0;
  const f = new Float64Array(vectors.length * w);
  vectors.forEach((v, i) => {
    if (v.length !== w) throw new InferError('ERR_BACKEND', `embedding ${i} has ${v.length} values, the first has ${w}`);
    f.set(v, i * w);
  });
  return { d: new Uint8Array(f.buffer), w };
}

/** The server's shared state: resolved options, the counters and the requests running now. */
interface ServerCtx {
  readonly opts: ForwardServerOptions;
  readonly maxConcurrent: number;
  readonly headerTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly now: () => number;
  readonly cache: VerifiedCache;
  active: number;
  readonly refused: Record<string, number>;
  readonly controllers: Set<AbortController>;
}

export async function startForwardServer(opts: ForwardServerOptions): Promise<ForwardServer> {
  const maxConcurrent = opts.maxConcurrent ?? 64;
  const now = opts.now ?? Date.now;
  const log = opts.logger ?? nullLogger;
  const warnings = new WarnLimiter(log, { now }); // a peer resetting many streams would log each
  const ctx: ServerCtx = {
    opts,
    maxConcurrent,
    headerTimeoutMs: opts.headerTimeoutMs ?? 5000,
    idleTimeoutMs: opts.idleTimeoutMs ?? 30_000,
    now,
    cache: opts.verifyCache ?? new VerifiedCache(4096),
    active: 0,
    refused: {},
    controllers: new Set<AbortController>(),
  };
  const handler = (stream: Stream, remotePeerId: string): void => {
    void serveStream(ctx, stream, remotePeerId).catch((err: unknown) => {
      warnings.warn('forward stream failed', 'forward stream failed', { err: err as Error, remote: remotePeerId });
      stream.abort(err instanceof Error ? err : new InferError('ERR_FORWARD_PROTOCOL', String(err)));
    });
  };

  await opts.host.handle(INFER_PROTOCOL, handler, { maxInboundStreams: maxConcurrent * 2, maxOutboundStreams: opts.maxOutboundStreams ?? 64 });
  return {
    get active() {
      return ctx.active;
    },
    refused: ctx.refused,
    async stop() {
      for (const c of ctx.controllers) c.abort();
      await opts.host.unhandle?.(INFER_PROTOCOL);
    },
  };
}

function refuse(ctx: ServerCtx, reason: string): void {
  ctx.refused[reason] = (ctx.refused[reason] ?? 0) + 1;
}

/** One inbound stream: the member check, then its requests one after another (keep-alive). */
async function serveStream(ctx: ServerCtx, stream: Stream, remote: string): Promise<void> {
  const { headerTimeoutMs } = ctx;
  const out = pushable<Uint8Array>();
  let current: AbortController | null = null;
  const sinkDone = pipe(out, encodeFrames, stream.sink).catch(() => current?.abort());
  const read = frameReader(stream);
  const send = (msg: Uint8Array): void => pushMessage(out, msg);
  try {
    // rule: the connection's peer is a member (cheapest, before reading anything)
    if (!ctx.opts.isMember(remote)) {
      refuse(ctx, 'ERR_FORWARD_REFUSED');
      send(errorFrame('ERR_FORWARD_REFUSED', `peer ${remote} is not a member of this cluster`));
      return;
    }
    let next = read();
    for (let served = 0; served < MAX_REQUESTS_PER_STREAM; served++) {
      const first = await withTimeout(next, served === 0 ? headerTimeoutMs : ctx.idleTimeoutMs);
      if (first === 'timeout') {
        if (served === 0) {
          refuse(ctx, 'ERR_FORWARD_PROTOCOL');
          send(errorFrame('ERR_FORWARD_PROTOCOL', `no request frame within ${headerTimeoutMs} ms`));
        }
        return; // idle keep-alive stream: just close it
      }
      if (first === null) return; // the requester went away
      // rule: the request message arrives with progress (each frame within headerTimeoutMs) and within its bound
      const msg = await collectMessage(first, read, headerTimeoutMs, MAX_MESSAGE_BYTES);
      if (!msg.ok) {
        refuse(ctx, 'ERR_FORWARD_PROTOCOL');
        const why = msg.reason === 'timeout' ? `no further request frame within ${headerTimeoutMs} ms` : msg.reason === 'oversize' ? `request larger than ${MAX_MESSAGE_BYTES} bytes` : 'stream closed inside a request';
        send(errorFrame('ERR_FORWARD_PROTOCOL', why));
        return;
      }
      // Any frame, close or reset while this request runs cancels it.
      next = read();
      const ac = new AbortController();
      current = ac;
      const keep = await handleRequest(ctx, msg.bytes, remote, send, ac, next);
      current = null;
      if (!keep) return;
    }
  } finally {
    out.end();
    await sinkDone;
  }
}

type CheckedRequest = { ok: true; parsed: ParsedRequest; deadlineMs: number; left: number } | { ok: false; code: string; msg: string };

/** The request's admission checks, cheapest first; `left`: ms to its deadline. */
function checkRequest(ctx: ServerCtx, frame: Uint8Array, remote: string): CheckedRequest {
  const { opts } = ctx;
  const fail = (code: string, msg: string): CheckedRequest => ({ ok: false, code, msg });
  // rule: the member may have been removed since the stream opened
  if (!opts.isMember(remote)) return fail('ERR_FORWARD_REFUSED', `peer ${remote} is not a member of this cluster`);
  // rule: bounded inbound concurrency
  if (ctx.active >= ctx.maxConcurrent) return fail('ERR_BUSY', `node busy: ${ctx.active} forwarded requests running (max ${ctx.maxConcurrent})`);
  // rules: envelope decode, kind, cluster, then signature (openEnvelope orders them cheapest first)
  const opened = openEnvelope<unknown>(frame, { kinds: [INFER_REQUEST_KIND], cluster: opts.cluster, maxBytes: MAX_MESSAGE_BYTES, cache: ctx.cache });
  if (!opened.ok) return fail('ERR_FORWARD_REFUSED', `bad request envelope (${opened.code}): ${opened.detail}`);
  const env = opened.envelope;
  // rule: the signer is the connection's peer (a header cannot be relayed by someone else)
  if (env.signerId !== remote) return fail('ERR_FORWARD_REFUSED', `envelope signer ${env.signerId} is not the connected peer ${remote}`);
  // rule: the signer is a member
  if (!opts.isMember(env.signerId)) return fail('ERR_FORWARD_REFUSED', `signer ${env.signerId} is not a member`);
  const parsed = parseRequestBody(env.body);
  if (!parsed.ok) return fail('ERR_FORWARD_PROTOCOL', `bad request body: ${parsed.detail}`);
  const body = parsed.body;
  // rule: hop count: only direct forwards; this node executes locally and never forwards again
  if (body.hop < 1 || body.hop > MAX_HOPS) return fail('ERR_FORWARD_REFUSED', `hop ${body.hop} not allowed (max ${MAX_HOPS})`);
  // rule: deadline not passed
  const left = body.deadlineMs - ctx.now();
  if (left <= 0) return fail('ERR_DEADLINE', `deadline passed ${-left} ms ago`);
  return { ok: true, parsed: parsed.parsed, deadlineMs: body.deadlineMs, left };
}

/** One request's progress, shared by its execution and the watcher of the requester's next frame. */
interface RequestRun {
  finished: boolean;
  cancelled: boolean;
  sentFirst: boolean;
}

/** Runs one request; returns whether the stream may carry another one. */
async function handleRequest(ctx: ServerCtx, frame: Uint8Array, remote: string, send: (m: Uint8Array) => void, ac: AbortController, nextFrame: Promise<Frame | null>): Promise<boolean> {
  const checked = checkRequest(ctx, frame, remote);
  if (!checked.ok) {
    refuse(ctx, checked.code);
    send(errorFrame(checked.code, checked.msg));
    return false;
  }
  ctx.active++;
  ctx.controllers.add(ac);
  const run: RequestRun = { finished: false, cancelled: false, sentFirst: false };
  void nextFrame.then(() => {
    if (!run.finished) {
      run.cancelled = true;
      ac.abort();
    }
  });
  const deadlineTimer = setTimeout(() => ac.abort(), Math.min(checked.left, 2 ** 31 - 1));
  const batch = deltaBatcher(send);
  try {
    return await execute(ctx, checked.parsed, run, send, batch, ac.signal);
  } catch (err) {
    batch.flush();
    run.finished = true;
    send(failureFrame(ctx, err, ac.signal.aborted, checked.deadlineMs, run.sentFirst));
    return false;
  } finally {
    ctx.active--;
    clearTimeout(deadlineTimer);
    ctx.controllers.delete(ac);
  }
}

/**
 * Deltas that arrive within one event-loop turn go out as one frame: a fast backend
 * (or the zero-delay simulator) costs one yamux/noise frame per turn, not per token;
 * a slow one still gets one frame per token with no added delay. Tool-call fragments
 * and logprobs are not merged (each keeps its own frame).
 */
function deltaBatcher(send: (m: Uint8Array) => void): { add(content: string): void; flush(): void } {
  let pending = '';
  let flushScheduled = false;
  const flush = (): void => {
    flushScheduled = false;
    if (pending === '') return;
    send(encodeCanonical({ t: 'c', c: pending }));
    pending = '';
  };
  const add = (content: string): void => {
    pending += content;
    if (pending.length > PART_BYTES / 8) flush(); // keep chunk frames far below one part
    else if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  };
  return { add, flush };
}

/** Executes the request on the local backends, sending its frames; returns whether the stream may carry another one. */
async function execute(ctx: ServerCtx, p: ParsedRequest, run: RequestRun, send: (m: Uint8Array) => void, batch: ReturnType<typeof deltaBatcher>, signal: AbortSignal): Promise<boolean> {
  const { opts } = ctx;
  if (p.op === 'embed') {
    const r = await opts.execute.embed(p.req, signal);
    run.finished = true;
    send(encodeCanonical({ t: 'v', ...packVectors(r.vectors), p: r.promptTokens, s: opts.localPeerId }));
    return !run.cancelled;
  }
  const source = p.op === 'chat' ? opts.execute.chat(p.req, signal) : opts.execute.complete(p.req, signal);
  for await (const c of source) {
    if (c.type === 'delta') {
      run.sentFirst = true;
      if (c.toolCalls !== undefined || c.logprobs !== undefined) {
        batch.flush();
        send(encodeCanonical({ t: 'c', c: c.content, ...(c.toolCalls === undefined ? {} : { k: JSON.stringify(c.toolCalls) }), ...(c.logprobs === undefined ? {} : { l: JSON.stringify(c.logprobs) }) }));
        continue;
      }
      batch.add(c.content);
    } else {
      batch.flush();
      run.finished = true;
      send(encodeCanonical({ t: 'e', r: c.finishReason, p: c.usage.promptTokens, n: c.usage.completionTokens, f: c.timings.firstTokenMs, m: c.timings.totalMs, s: opts.localPeerId }));
    }
  }
  batch.flush();
  if (!run.finished) {
    run.finished = true;
    send(errorFrame(signal.aborted ? 'ERR_ABORTED' : 'ERR_BACKEND', 'backend stream ended without a final chunk'));
    return false;
  }
  return !run.cancelled;
}

/** The error frame of a request that threw: aborted by the deadline or the requester, or the backend's error with its upstream details. */
function failureFrame(ctx: ServerCtx, err: unknown, aborted: boolean, deadlineMs: number, sentFirst: boolean): Uint8Array {
  const e = toInferError(err, ctx.opts.localPeerId);
  const code = aborted ? (ctx.now() >= deadlineMs ? 'ERR_DEADLINE' : 'ERR_ABORTED') : e.code;
  const u = upstreamData(e.data);
  return encodeCanonical({
    t: 'x',
    code,
    msg: `served by ${ctx.opts.localPeerId}: ${e.message}`,
    first: sentFirst,
    ...(typeof u['status'] === 'number' ? { st: u['status'] } : {}),
    ...(typeof u['upstreamCode'] === 'string' ? { uc: u['upstreamCode'] } : {}),
    ...(typeof u['upstreamType'] === 'string' ? { ut: u['upstreamType'] } : {}),
    ...(typeof u['param'] === 'string' ? { up: u['param'] } : {}),
  });
}
