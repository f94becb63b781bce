/**
 * The forwarding protocol `/fednode/infer/1.0.0` (libp2p stream, it-pipe +
 * it-length-prefixed frames):
 *
 *   requester -> server : frame 1 = signed envelope, kind 'infer-request'
 *                         body { requestId, model, deadlineMs, hop, request }
 *                         then the requester keeps its write side open; closing or
 *                         resetting it cancels the request on the server.
 *   server -> requester : chunk frames  { t: 'c', c: text }
 *                         then ONE of   { t: 'e', r: finishReason, p, n, f, m, s: servedBy }   (trailer)
 *                                       { t: 'x', code, msg, first: bool }                   (error)
 *
 * Frames are deterministic CBOR. Server checks, cheapest first: remote peer is a
 * member; inbound concurrency bound; first frame size; envelope decode (kind,
 * cluster); signer == remote peer (no relaying of someone else's header); signer is
 * a member; hop == 1 (a forwarded request is never forwarded again: the server only
 * executes locally); deadline not passed; request schema; signature (last: costliest).
 */
import { pipe } from 'it-pipe';
import * as lp from 'it-length-prefixed';
import { pushable } from 'it-pushable';
import type { Pushable } from 'it-pushable';
import type { Stream } from '@libp2p/interface';
import { createEnvelope, openEnvelope, decodeCanonical, encodeCanonical, VerifiedCache } from '../../crypto/index.js';
import type { Identity } from '../../crypto/index.js';
import type { Logger } from '../log.js';
import { nullLogger } from '../log.js';
import type { ChatChunk, ChatMessage, ChatRequest, FinishReason } from '../backends/types.js';
import { InferError } from './errors.js';
import type { InferErrorCode } from './errors.js';

export const INFER_PROTOCOL = '/fednode/infer/1.0.0';
export const INFER_REQUEST_KIND = 'infer-request';
/** Largest frame either way: a long prompt is < 1 MiB of text; refusing more bounds memory per stream. */
export const MAX_FRAME_BYTES = 1024 * 1024;
/** A forwarded request may make exactly one hop (requester -> server). */
export const MAX_HOPS = 1;
/** Requests carried by one stream before it is closed (bounds a stream's lifetime; reopening is cheap). */
export const MAX_REQUESTS_PER_STREAM = 10_000;
/** Idle streams kept open per peer by a requester (keep-alive pool); more are closed. */
export const MAX_IDLE_STREAMS_PER_PEER = 16;
/** Messages per request (OpenAI allows long chats; 1024 bounds decode work). */
export const MAX_MESSAGES = 1024;

/** The small part of a libp2p host this module needs (node/p2p Host satisfies it). */
export interface ForwardHost {
  handle(protocol: string, handler: (stream: Stream, remotePeerId: string) => void, opts?: { maxInboundStreams?: number }): Promise<void>;
  /** negotiateFully: false lets libp2p send the protocol id with the first frame (saves a round trip). */
  dialProtocol(peerId: string, protocol: string, opts?: { signal?: AbortSignal; negotiateFully?: boolean }): Promise<Stream>;
  unhandle?(protocol: string): Promise<void>;
}

export interface InferRequestBody {
  requestId: string;
  model: string;
  /** Unix ms after which the server gives up. */
  deadlineMs: number;
  hop: number;
  request: { messages: ChatMessage[]; maxTokens?: number; temperature?: number; topP?: number; stop?: string[]; seed?: number };
}

/** Chunks of a forwarded (or routed) stream: the 'done' carries the serving node. */
export type ServedChunk = { type: 'delta'; content: string } | (Extract<ChatChunk, { type: 'done' }> & { servedBy: string });

function stripUndefined<T extends Record<string, unknown>>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as T;
}

function errorFrame(code: string, msg: string): Uint8Array {
  return encodeCanonical({ t: 'x', code, msg });
}

const ROLES = new Set(['system', 'user', 'assistant', 'tool']);

/** Validates the decoded request body (closed schema, bounded). Returns null + reason when bad. */
export function parseRequestBody(b: unknown): { ok: true; body: InferRequestBody } | { ok: false; detail: string } {
  if (typeof b !== 'object' || b === null || Array.isArray(b)) return { ok: false, detail: 'body is not a map' };
  const r = b as Record<string, unknown>;
  if (typeof r['requestId'] !== 'string' || r['requestId'].length === 0 || r['requestId'].length > 128) return { ok: false, detail: 'requestId must be a 1..128 character string' };
  if (typeof r['model'] !== 'string' || r['model'].length === 0 || r['model'].length > 256) return { ok: false, detail: 'model must be a 1..256 character string' };
  if (typeof r['deadlineMs'] !== 'number' || !Number.isSafeInteger(r['deadlineMs'])) return { ok: false, detail: 'deadlineMs must be an integer' };
  if (typeof r['hop'] !== 'number' || !Number.isSafeInteger(r['hop'])) return { ok: false, detail: 'hop must be an integer' };
  const req = r['request'];
  if (typeof req !== 'object' || req === null) return { ok: false, detail: 'request must be a map' };
  const q = req as Record<string, unknown>;
  const msgs = q['messages'];
  if (!Array.isArray(msgs) || msgs.length === 0 || msgs.length > MAX_MESSAGES) return { ok: false, detail: `messages must be 1..${MAX_MESSAGES} entries` };
  const messages: ChatMessage[] = [];
  for (const m of msgs as unknown[]) {
    const mm = m as Record<string, unknown> | null;
    if (typeof mm !== 'object' || mm === null || typeof mm['role'] !== 'string' || !ROLES.has(mm['role']) || typeof mm['content'] !== 'string') return { ok: false, detail: 'each message needs a role and string content' };
    messages.push({ role: mm['role'] as ChatMessage['role'], content: mm['content'] });
  }
  const optNum = (k: string): number | undefined | null => (q[k] === undefined ? undefined : typeof q[k] === 'number' && Number.isFinite(q[k]) ? q[k] : null);
  const maxTokens = optNum('maxTokens');
  const temperature = optNum('temperature');
  const topP = optNum('topP');
  const seed = optNum('seed');
  if (maxTokens === null || temperature === null || topP === null || seed === null) return { ok: false, detail: 'maxTokens/temperature/topP/seed must be numbers' };
  let stop: string[] | undefined;
  if (q['stop'] !== undefined) {
    if (!Array.isArray(q['stop']) || q['stop'].length > 16 || !q['stop'].every((s) => typeof s === 'string')) return { ok: false, detail: 'stop must be up to 16 strings' };
    stop = q['stop'];
  }
  return {
    ok: true,
    body: { requestId: r['requestId'], model: r['model'], deadlineMs: r['deadlineMs'], hop: r['hop'], request: stripUndefined({ messages, maxTokens, temperature, topP, stop, seed }) },
  };
}

export interface ForwardServerOptions {
  host: ForwardHost;
  cluster: string;
  /** Current membership (the p2p host's MemberSource.isMember). */
  isMember: (peerId: string) => boolean;
  /** Runs the request on THIS node's backends only (never forwards). */
  execute: (req: ChatRequest, signal: AbortSignal) => AsyncIterable<ChatChunk>;
  /** Name put in trailers as served_by (this node's peer id). */
  localPeerId: string;
  /** Inbound forwarded requests running at once; more get an ERR_BUSY frame. @default 64 */
  maxConcurrent?: number;
  /** Time allowed for the request frame to arrive. @default 5000 */
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

async function raceTimeout<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
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

export async function startForwardServer(opts: ForwardServerOptions): Promise<ForwardServer> {
  const maxConcurrent = opts.maxConcurrent ?? 64;
  const headerTimeoutMs = opts.headerTimeoutMs ?? 5000;
  const idleTimeoutMs = opts.idleTimeoutMs ?? 30_000;
  const now = opts.now ?? Date.now;
  const log = opts.logger ?? nullLogger;
  const cache = opts.verifyCache ?? new VerifiedCache(4096);
  let active = 0;
  const refused: Record<string, number> = {};
  const controllers = new Set<AbortController>();
  const refuse = (reason: string): void => {
    refused[reason] = (refused[reason] ?? 0) + 1;
  };

  const handler = (stream: Stream, remotePeerId: string): void => {
    void serve(stream, remotePeerId).catch((err: unknown) => {
      log.warn('forward stream failed', { err: err as Error, remote: remotePeerId });
      stream.abort(err instanceof Error ? err : new InferError('ERR_FORWARD_PROTOCOL', String(err)));
    });
  };

  async function serve(stream: Stream, remote: string): Promise<void> {
    const out = pushable<Uint8Array>();
    let current: AbortController | null = null;
    const sinkDone = pipe(out, (s) => lp.encode(s), stream.sink).catch(() => current?.abort());
    const frames = lp.decode(stream.source, { maxDataLength: MAX_FRAME_BYTES })[Symbol.asyncIterator]();
    // A read that never rejects: null = the requester closed or reset the stream (or sent an oversize frame).
    const read = (): Promise<Uint8Array | null> =>
      frames.next().then(
        (r) => (r.done === true ? null : r.value.subarray()),
        () => null,
      );
    try {
      // rule: the connection's peer is a member (cheapest, before reading anything)
      if (!opts.isMember(remote)) {
        refuse('ERR_FORWARD_REFUSED');
        out.push(errorFrame('ERR_FORWARD_REFUSED', `peer ${remote} is not a member of this cluster`));
        return;
      }
      // One request at a time per stream; the stream is reused for the requester's next
      // request (as HTTP keep-alive), which saves a stream open per request.
      let next = read();
      for (let served = 0; served < MAX_REQUESTS_PER_STREAM; served++) {
        const frame = await raceTimeout(next, served === 0 ? headerTimeoutMs : idleTimeoutMs);
        if (frame === 'timeout') {
          if (served === 0) {
            refuse('ERR_FORWARD_PROTOCOL');
            out.push(errorFrame('ERR_FORWARD_PROTOCOL', `no request frame within ${headerTimeoutMs} ms`));
          }
          return; // idle keep-alive stream: just close it
        }
        if (frame === null) return; // the requester went away
        // Any frame, close or reset while this request runs cancels it.
        next = read();
        const ac = new AbortController();
        current = ac;
        const keep = await handleRequest(frame, remote, out, ac, next);
        current = null;
        if (!keep) return;
      }
    } finally {
      out.end();
      await sinkDone;
    }
  }

  /** Runs one request; returns whether the stream may carry another one. */
  async function handleRequest(frame: Uint8Array, remote: string, out: Pushable<Uint8Array>, ac: AbortController, nextFrame: Promise<Uint8Array | null>): Promise<boolean> {
    const fail = (code: string, msg: string): boolean => {
      refuse(code);
      out.push(errorFrame(code, msg));
      return false;
    };
    // rule: the member may have been removed since the stream opened
    if (!opts.isMember(remote)) return fail('ERR_FORWARD_REFUSED', `peer ${remote} is not a member of this cluster`);
    // rule: bounded inbound concurrency
    if (active >= maxConcurrent) return fail('ERR_BUSY', `node busy: ${active} forwarded requests running (max ${maxConcurrent})`);
    // rules: envelope decode, kind, cluster, then signature (openEnvelope orders them cheapest first)
    const opened = openEnvelope<unknown>(frame, { kinds: [INFER_REQUEST_KIND], cluster: opts.cluster, maxBytes: MAX_FRAME_BYTES, cache });
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
    const left = body.deadlineMs - now();
    if (left <= 0) return fail('ERR_DEADLINE', `deadline passed ${-left} ms ago`);

    active++;
    controllers.add(ac);
    let finished = false;
    let cancelled = false;
    void nextFrame.then(() => {
      if (!finished) {
        cancelled = true;
        ac.abort();
      }
    });
    const deadlineTimer = setTimeout(() => ac.abort(), Math.min(left, 2 ** 31 - 1));
    const req: ChatRequest = { model: body.model, ...body.request };
    let sentFirst = false;
    // Deltas that arrive within one event-loop turn go out as one frame: a fast backend
    // (or the zero-delay simulator) costs one yamux/noise frame per turn, not per token;
    // a slow one still gets one frame per token with no added delay.
    let pending = '';
    let flushScheduled = false;
    const flush = (): void => {
      flushScheduled = false;
      if (pending === '') return;
      out.push(encodeCanonical({ t: 'c', c: pending }));
      pending = '';
    };
    try {
      for await (const c of opts.execute(req, ac.signal)) {
        if (c.type === 'delta') {
          sentFirst = true;
          pending += c.content;
          if (pending.length > MAX_FRAME_BYTES / 8) flush(); // keep frames far below the frame bound
          else if (!flushScheduled) {
            flushScheduled = true;
            setImmediate(flush);
          }
        } else {
          flush();
          finished = true;
          out.push(encodeCanonical({ t: 'e', r: c.finishReason, p: c.usage.promptTokens, n: c.usage.completionTokens, f: c.timings.firstTokenMs, m: c.timings.totalMs, s: opts.localPeerId }));
        }
      }
      flush();
      if (!finished) {
        finished = true;
        out.push(errorFrame(ac.signal.aborted ? 'ERR_ABORTED' : 'ERR_BACKEND', 'backend stream ended without a final chunk'));
        return false;
      }
      return !cancelled;
    } catch (err) {
      flush();
      finished = true;
      const code = ac.signal.aborted ? (now() >= body.deadlineMs ? 'ERR_DEADLINE' : 'ERR_ABORTED') : 'ERR_BACKEND';
      const e = err as { code?: unknown; message?: unknown };
      const detail = typeof e.code === 'string' ? `${e.code}: ${String(e.message)}` : String(e.message ?? err);
      out.push(encodeCanonical({ t: 'x', code, msg: `served by ${opts.localPeerId}: ${detail}`, first: sentFirst }));
      return false;
    } finally {
      active--;
      clearTimeout(deadlineTimer);
      controllers.delete(ac);
    }
  }

  await opts.host.handle(INFER_PROTOCOL, handler, { maxInboundStreams: maxConcurrent * 2 });
  return {
    get active() {
      return active;
    },
    refused,
    async stop() {
      for (const c of controllers) c.abort();
      await opts.host.unhandle?.(INFER_PROTOCOL);
    },
  };
}

export interface ForwardClientOptions {
  host: ForwardHost;
  identity: Identity;
  cluster: string;
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
  frames: AsyncIterator<{ subarray(): Uint8Array }>;
}

/**
 * Sends requests over `/fednode/infer/1.0.0`; each call yields deltas then a 'done'
 * with servedBy. Streams are kept alive and reused for the next request to the same
 * peer (bounded pool); a stale pooled stream is replaced transparently.
 */
export class ForwardClient {
  private seq = 0;
  private readonly now: () => number;
  private readonly idle = new Map<string, Channel[]>();
  /** Streams opened, requests sent on a kept-alive stream, stale pooled streams replaced. */
  readonly stats = { opened: 0, reused: 0, staleReplaced: 0 };
  constructor(private readonly opts: ForwardClientOptions) {
    this.now = opts.now ?? Date.now;
  }

  private async open(peerId: string, signal: AbortSignal | undefined): Promise<Channel> {
    const stream = await this.opts.host.dialProtocol(peerId, INFER_PROTOCOL, signal === undefined ? { negotiateFully: false } : { signal, negotiateFully: false });
    this.stats.opened++;
    const out = pushable<Uint8Array>();
    void pipe(out, (s) => lp.encode(s), stream.sink).catch(() => undefined);
    const frames = lp.decode(stream.source, { maxDataLength: MAX_FRAME_BYTES })[Symbol.asyncIterator]();
    return { stream, out, frames };
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
    if (list.length >= MAX_IDLE_STREAMS_PER_PEER || ch.stream.status !== 'open') {
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

  /**
   * Errors are InferErrors; `data.afterFirstToken` is true when the failure came after
   * at least one delta was yielded (no failover possible then).
   */
  async *chat(peerId: string, req: ChatRequest, call: ForwardCallOptions): AsyncIterable<ServedChunk> {
    const signal = call.signal;
    const aborted = (): boolean => signal?.aborted === true;
    if (aborted()) throw new InferError('ERR_ABORTED', 'request aborted', { peerId, afterFirstToken: false });
    const body: InferRequestBody = {
      requestId: call.requestId,
      model: req.model,
      deadlineMs: Math.floor(call.deadlineMs),
      hop: 1,
      request: stripUndefined({
        messages: req.messages.map((m) => ({ role: m.role, content: m.content })),
        maxTokens: req.maxTokens,
        temperature: req.temperature,
        topP: req.topP,
        stop: req.stop === undefined ? undefined : [...req.stop],
        seed: req.seed,
      }),
    };
    const header = createEnvelope(this.opts.identity, { kind: INFER_REQUEST_KIND, cluster: this.opts.cluster, seq: ++this.seq, time: Math.floor(this.now()), body });
    let ch = this.takeIdle(peerId);
    let reused = ch !== null;
    if (reused) this.stats.reused++;
    const openFresh = async (): Promise<Channel> => {
      try {
        return await this.open(peerId, signal);
      } catch (err) {
        throw new InferError(aborted() ? 'ERR_ABORTED' : 'ERR_FORWARD_REFUSED', `cannot open ${INFER_PROTOCOL} to ${peerId}: ${(err as Error).message}`, { peerId, afterFirstToken: false }, { cause: err });
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
    const replaceStale = async (): Promise<Channel> => {
      this.stats.staleReplaced++;
      this.discard(current, true);
      reused = false;
      const fresh = await openFresh();
      fresh.out.push(header);
      return fresh;
    };
    try {
      current.out.push(header);
      for (;;) {
        let r: IteratorResult<{ subarray(): Uint8Array }>;
        try {
          r = await current.frames.next();
        } catch (err) {
          if (canRetryStale()) {
            // The kept-alive stream had gone stale (peer closed it): one fresh try.
            current = await replaceStale();
            continue;
          }
          throw new InferError(aborted() ? 'ERR_ABORTED' : 'ERR_FORWARD_PROTOCOL', `stream to ${peerId} failed: ${(err as Error).message}`, { peerId, afterFirstToken: yielded }, { cause: err });
        }
        if (r.done === true) {
          if (canRetryStale()) {
            current = await replaceStale();
            continue;
          }
          throw new InferError(aborted() ? 'ERR_ABORTED' : 'ERR_FORWARD_PROTOCOL', `stream to ${peerId} ended without a trailer`, { peerId, afterFirstToken: yielded });
        }
        gotFrame = true;
        let f: Record<string, unknown>;
        try {
          f = decodeCanonical(r.value.subarray(), MAX_FRAME_BYTES) as Record<string, unknown>;
        } catch (err) {
          throw new InferError('ERR_FORWARD_PROTOCOL', `bad frame from ${peerId}: ${(err as Error).message}`, { peerId, afterFirstToken: yielded });
        }
        if (typeof f !== 'object' || f === null) throw new InferError('ERR_FORWARD_PROTOCOL', `frame from ${peerId} is not a map`, { peerId, afterFirstToken: yielded });
        if (f['t'] === 'c' && typeof f['c'] === 'string') {
          yielded = true;
          yield { type: 'delta', content: f['c'] };
        } else if (f['t'] === 'e') {
          const n = (k: string): number => (typeof f[k] === 'number' ? f[k] : 0);
          const finishReason: FinishReason = f['r'] === 'length' ? 'length' : 'stop';
          complete = true;
          yield {
            type: 'done',
            finishReason,
            usage: { promptTokens: n('p'), completionTokens: n('n') },
            timings: { firstTokenMs: typeof f['f'] === 'number' ? f['f'] : null, totalMs: n('m') },
            servedBy: typeof f['s'] === 'string' ? f['s'] : peerId,
          };
          return;
        } else if (f['t'] === 'x') {
          const code = typeof f['code'] === 'string' ? f['code'] : 'ERR_FORWARD_PROTOCOL';
          const known: InferErrorCode[] = ['ERR_BUSY', 'ERR_DEADLINE', 'ERR_ABORTED', 'ERR_FORWARD_REFUSED', 'ERR_FORWARD_PROTOCOL', 'ERR_BACKEND', 'ERR_MODEL_NOT_FOUND'];
          throw new InferError(known.includes(code as InferErrorCode) ? (code as InferErrorCode) : 'ERR_BACKEND', `${peerId} refused or failed: ${String(f['msg'])}`, {
            peerId,
            remoteCode: code,
            afterFirstToken: yielded,
          });
        } else {
          throw new InferError('ERR_FORWARD_PROTOCOL', `unknown frame type from ${peerId}`, { peerId, afterFirstToken: yielded });
        }
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      // Complete: keep the stream for the next request. Otherwise reset it (cancels the server side).
      if (complete) this.putIdle(peerId, current);
      else this.discard(current, true);
    }
  }
}
