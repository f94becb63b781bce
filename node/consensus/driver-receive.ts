/** The consensus driver, part 3 of 4: receive, status tick, catch-up. */
import { DriverEffects } from './driver-effects.js';
import type { AppliedDecision } from './driver-types.js';
import { expectRecord } from '../../crypto/cbor.js';
import { valueIdOf, verifyCommitCertificate } from '../../consensus/core.js';
import { toHex } from '../../base/hex.js';
import { decodeBatch, MAX_BATCH_BYTES, MAX_BATCH_OPS, type PatternOp } from '../../consensus/patterns.js';
import { applyBatch, registryHash, validateBatch, validatorSetAt, type Registry } from '../../consensus/registry.js';
import type { ConsensusMessage } from '../../consensus/types.js';
import { decodeDecision } from './decided-log.js';
import { opId } from './mempool.js';
import type { InboundEnvelope } from './ports.js';
import { decodeSyncResponse, encodeSyncResponse, MAX_SYNC_HEIGHTS, MAX_SYNC_MESSAGES, SYNC_RESPONSE_BUDGET_BYTES, type SyncRequest, type SyncResponse } from './sync.js';
import type { PeerStatus } from './driver-types.js';
import { PEER_STATUS_MAX, STUCK_TICKS, STATUS_KEEPALIVE_TICKS, STATUS_STALE_TICKS, REGOSSIP_TICKS, QUIET_TICKS, KIND_PROPOSAL, KIND_VOTE, KIND_STATUS, KIND_OPS } from './driver-types.js';
import { msgHeight, msgRound, msgSigner, wireBytes, parseStatus, decodeConsensusBody, currentMessages } from './driver-messages.js';

/** Receiving envelopes, peer status and stuck detection, catch-up client and server. */
export abstract class DriverReceive extends DriverEffects {
  // -------------------------------------------------------------------------------------------
  // Receiving

  protected onGossip(env: InboundEnvelope): void {
    if (this.stopped) return;
    // [member] the gossip layer checked it already; membership may have changed since
    if (!this.members.isMember(env.signerId)) {
      this.c.nonMember++;
      return;
    }
    switch (env.kind) {
      case KIND_PROPOSAL:
      case KIND_VOTE: {
        const m = env.body instanceof Uint8Array ? decodeConsensusBody(env.body) : null;
        if (m === null || m.type !== env.kind) {
          this.c.badMessages++;
          return;
        }
        this.push({ kind: 'message', m, from: env.signerId }, false);
        return;
      }
      case KIND_STATUS:
        this.onStatus(env.signerId, env.body);
        return;
      case KIND_OPS:
        this.onOps(env.body);
        return;
      default:
        this.c.badMessages++;
    }
  }

  protected async onMessage(m: ConsensusMessage): Promise<void> {
    // [size] a proposal's value is a batch (<= MAX_BATCH_BYTES); larger ones are never looked at
    if (m.type === 'proposal' && m.proposal.proposal.value.length > MAX_BATCH_BYTES) {
      this.c.oversize++;
      return;
    }
    // [height] only the current and the next height are worked on
    const h = msgHeight(m);
    if (h < this.current) {
      this.c.stale++;
      return;
    }
    if (h > this.current + 1) {
      this.c.farAhead++; // a peer is ahead: the status tick fetches the decided heights
      return;
    }
    // [validator] the inner signer must vote at that height (the set of h <= reg.height + 2 is known)
    if (!this.validatorKeysAt(h).has(toHex(msgSigner(m)))) {
      this.c.nonValidator++;
      return;
    }
    if (!this.running) await this.startNextIfIdle('peer'); // a message for the next height is work
    await this.feed(m.type === 'vote' ? { type: 'vote', vote: m.vote } : { type: 'proposal', proposal: m.proposal });
  }

  protected validatorKeysMemo: { reg: Registry; height: number; keys: Set<string> } | null = null;
  /** Validator keys (hex) at `height` (<= reg.height + 2), memoised per registry and height. */
  protected validatorKeysAt(height: number): Set<string> {
    const m = this.validatorKeysMemo;
    if (m !== null && m.reg === this.reg && m.height === height) return m.keys;
    const keys = new Set(validatorSetAt(this.reg, height).validators.map((v) => toHex(v.publicKey)));
    this.validatorKeysMemo = { reg: this.reg, height, keys };
    return keys;
  }

  protected onStatus(from: string, body: unknown): void {
    const s = parseStatus(body, this.now());
    if (s === null) {
      this.c.badStatus++;
      return;
    }
    this.peerStatus.delete(from);
    if (this.peerStatus.size >= PEER_STATUS_MAX) {
      const oldest = this.peerStatus.keys().next().value;
      if (oldest !== undefined) this.peerStatus.delete(oldest);
    }
    this.peerStatus.set(from, s);
    this.ticksWithoutStatus = 0;
    // Same decided height, different registry hash: the two nodes' states diverged (a bug or a
    // corrupted store; > 1/3 faulty validators could also do it). Loud, never silent.
    if (s.decided === this.reg.height && s.decided > 0 && s.hashHex !== this.regHashHex) {
      this.c.hashMismatch++;
      this.log.error('registry hash differs from a peer at the same decided height', { peer: from, height: s.decided, ours: this.regHashHex, theirs: s.hashHex });
    }
    if (s.decided >= this.current) void this.catchUp(from);
  }

  protected onOps(body: unknown): void {
    let ops: PatternOp[];
    let senderDecided: number;
    try {
      const r = expectRecord(body, ['decided', 'batch'], 'ops');
      const { decided, batch } = r;
      if (typeof decided !== 'number' || !Number.isSafeInteger(decided) || decided < 0) throw new TypeError('decided');
      if (!(batch instanceof Uint8Array) || batch.length > MAX_BATCH_BYTES) throw new TypeError('batch');
      ops = decodeBatch(batch);
      senderDecided = decided;
    } catch {
      this.c.opsRejected++;
      return;
    }
    let added = 0;
    for (const op of ops) {
      const { id, bytes } = opId(op);
      // Decided after the sender sent it: a late copy, not new work.
      const at = this.recentlyDecided.get(id);
      if (at !== undefined && at > senderDecided) continue;
      const r = this.pool.add(id, op, bytes);
      if (r === 'added') added++;
      else if (r === 'full') this.c.opsDropped++;
    }
    this.c.opsReceived += added;
    if (added > 0 && !this.running) this.kick();
  }

  // -------------------------------------------------------------------------------------------
  // Status and catch-up

  protected tick(): void {
    if (this.stopped || this.wireT === null) return;
    if (this.unstored !== null) this.push({ kind: 'store-retry' }, true);
    const isMember = this.members.isMember(this.o.identity.peerId);
    if (isMember) this.publishStatus();
    // Behind a peer: fetch decided heights, from a directly connected peer when there is one
    // (a status can come from a member we only reach through the mesh), rotating on each tick.
    const freshMs = this.now() - STATUS_STALE_TICKS * this.statusIntervalMs;
    const ahead = [...this.peerStatus].filter(([, s]) => s.decided > this.reg.height && s.atMs >= freshMs).map(([p]) => p);
    if (ahead.length > 0) {
      const connected = new Set(this.wireT.connectedPeers());
      const direct = ahead.filter((p) => connected.has(p));
      const list = direct.length > 0 ? direct : ahead;
      this.peerCursor = (this.peerCursor + 1) % list.length;
      void this.catchUp(list[this.peerCursor]!);
      return;
    }
    // Own submitted ops still pending: gossip them again now and then (a copy may have been lost
    // before the mesh formed), and make sure pending work starts a height.
    if (++this.ticksSinceRegossip >= REGOSSIP_TICKS) {
      this.ticksSinceRegossip = 0;
      for (const id of this.waiters.keys()) {
        if (this.gossipOps.length >= MAX_BATCH_OPS) break;
        const e = this.pool.get(id);
        if (e !== undefined) this.gossipOps.push({ id, ...e });
      }
      if (this.gossipOps.length > 0 && !this.gossipFlushScheduled) {
        this.gossipFlushScheduled = true;
        this.t.soon(() => this.flushOpsGossip());
      }
    }
    if (!this.running && this.hasWork()) this.kick();
    const mark = `${this.current}/${this.running ? this.state.round : -1}/${this.running ? this.state.step : 'idle'}`;
    if (mark === this.lastProgressMark) this.ticksWithoutProgress++;
    else {
      this.lastProgressMark = mark;
      this.ticksWithoutProgress = 0;
    }
    this.ticksWithoutStatus++;
    if (this.running && this.ticksWithoutProgress >= STUCK_TICKS) {
      // Stuck in a height: re-send our own messages of this round (new envelopes: gossip
      // de-duplicates identical bytes) and fetch the votes a peer at this height has.
      this.ticksWithoutProgress = 0;
      for (const b of this.own) {
        const m = decodeConsensusBody(b);
        if (m !== null && msgHeight(m) === this.current && msgRound(m) === this.state.round) this.broadcast(m);
      }
      const peer = this.pickPeer((s) => s.height === this.current);
      if (peer !== null) void this.catchUp(peer);
    } else if (!isMember || this.ticksWithoutStatus >= QUIET_TICKS) {
      // Heard nobody (or not a member yet, e.g. a joining node): ask a connected peer.
      this.ticksWithoutStatus = 0;
      const peer = this.pickPeer(() => true);
      if (peer !== null) void this.catchUp(peer);
    }
  }

  /**
   * This member's status, on gossip: every tick while a height runs or when it changed, when a
   * peer connected since the last tick, else every STATUS_KEEPALIVE_TICKS (an idle cluster's
   * statuses say nothing new; see driver-types.ts for the bounds that follow from it).
   */
  protected publishStatus(): void {
    const round = this.running ? this.state.round : 0;
    const mark = `${this.current}/${round}/${this.reg.height}/${this.regHashHex}`;
    const connected = this.wireT?.connectedPeers() ?? [];
    let newPeer = connected.length > this.statusPeers.size;
    if (!newPeer) for (const p of connected) if (!this.statusPeers.has(p)) newPeer = true;
    if (newPeer || connected.length !== this.statusPeers.size) this.statusPeers = new Set(connected);
    if (!this.running && !newPeer && mark === this.lastStatusMark && ++this.ticksSinceOwnStatus < STATUS_KEEPALIVE_TICKS) return;
    this.lastStatusMark = mark;
    this.ticksSinceOwnStatus = 0;
    this.publish(KIND_STATUS, { height: this.current, round, decided: this.reg.height, hash: new Uint8Array(Buffer.from(this.regHashHex, 'hex')) });
  }

  /** A connected peer (round robin), preferring those whose status matches `want`. */
  protected pickPeer(want: (s: PeerStatus) => boolean): string | null {
    const wire = this.wireT;
    if (wire === null) return null;
    const connected = wire.connectedPeers();
    if (connected.length === 0) return null;
    const preferred = connected.filter((p) => {
      const s = this.peerStatus.get(p);
      return s !== undefined && want(s);
    });
    const list = preferred.length > 0 ? preferred : connected;
    this.peerCursor = (this.peerCursor + 1) % list.length;
    return list[this.peerCursor] ?? null;
  }

  /** Fetch decided heights (and the current height's messages) from `peer` until level with it. */
  protected async catchUp(peer: string): Promise<void> {
    const wire = this.wireT;
    if (this.syncing || wire === null || this.stopped) return;
    this.syncing = true;
    try {
      // Bounded: each round trip either advances by >= 1 height or stops.
      for (let trips = 0; trips < 1_000_000 && !this.stopped; trips++) {
        const from = this.current;
        let raw: Uint8Array;
        try {
          raw = await wire.requestSync(peer, { from, limit: MAX_SYNC_HEIGHTS }, this.syncTimeoutMs);
        } catch (err) {
          this.c.syncFailures++;
          this.log.debug('catch-up request failed', { peer, err: err instanceof Error ? err.message : String(err) });
          return;
        }
        const r = decodeSyncResponse(raw);
        if (r === null) {
          this.c.syncBadResponses++;
          return;
        }
        const s = this.peerStatus.get(peer);
        if (s !== undefined && s.decided < r.decided) this.peerStatus.set(peer, { ...s, decided: r.decided, height: r.height, hashHex: '' });
        // Wait for this response to be applied (not for the loop to drain: a busy cluster never drains).
        await Promise.race([new Promise<void>((done) => this.push({ kind: 'catchup', r, from: peer, done }, true)), this.stoppedPromise]);
        if (this.current <= from || r.decided < this.current || r.entries.length === 0) return;
      }
    } finally {
      this.syncing = false;
    }
  }

  protected async onCatchup(r: SyncResponse, from: string): Promise<void> {
    // Verified heights behind the core are written in ONE synced batch, then applied: a node
    // 1,000 heights behind pays ~16 fsyncs, not 1,000 (each is still durable before it is used).
    const batch: AppliedDecision[] = [];
    let reg = this.reg;
    for (const e of r.entries) {
      if (this.stopped) return;
      const h = e.height;
      if (h < reg.height + 1) continue;
      if (h > reg.height + 1) break; // a gap: the next request fills it
      const cert = e.certificate;
      const verdict =
        cert.height !== h || valueIdOf(e.value) !== cert.valueId
          ? { ok: false as const, reason: 'certificate does not match the entry' }
          : verifyCommitCertificate(cert, validatorSetAt(reg, h), (pk, d, s) => this.verify(pk, d, s), this.cluster);
      if (!verdict.ok) {
        this.c.certificatesRejected++;
        this.log.warn('catch-up certificate rejected', { from, height: h, reason: verdict.reason });
        break;
      }
      // A decided value is judged by the decided rules (as applyBatch and the log replay do):
      // rules added after it was decided must not make a certified height unfetchable.
      if (!validateBatch(reg, h, e.value, { decided: true }).ok) {
        this.c.certificatesRejected++;
        this.log.error('catch-up: a certified batch does not apply (more than a third of the validators are faulty?)', { from, height: h });
        break;
      }
      if (batch.length === 0 && this.running && h === this.current) {
        // The height the core is deciding: through the core (it checks the certificate again).
        await this.feed({ type: 'decided', height: h, value: e.value, certificate: cert });
        if (this.current === h) return; // not applied (cannot happen after the checks above)
        this.caughtUpHeights++;
        reg = this.reg;
        continue;
      }
      const next = applyBatch(reg, h, e.value);
      batch.push({ height: h, round: cert.round, value: e.value, certificate: cert, before: reg, next, hash: registryHash(next), decidedMs: Math.floor(this.now()) });
      reg = next;
    }
    if (batch.length > 0) {
      await this.decidedLog.putMany(batch.map((d) => ({ height: d.height, round: d.round, value: d.value, certificate: d.certificate, registryHash: d.hash, decidedMs: d.decidedMs })));
      for (const d of batch) {
        this.applied(d);
        this.caughtUpHeights++;
      }
    }
    // Level with the peer and it is mid-height: take its messages of this height.
    if (r.decided < this.current && r.height === this.current) {
      for (const m of r.messages) if (msgHeight(m) === this.current) await this.onMessage(m);
    }
  }

  protected served(ok: boolean, remote: string): void {
    if (ok) this.c.syncServed++;
    else {
      this.c.syncBadRequests++;
      this.log.debug('bad or failed sync request', { remote });
    }
  }

  protected async answer(req: SyncRequest): Promise<Uint8Array> {
    const entries: { height: number; round: number; value: Uint8Array; certificate: Uint8Array }[] = [];
    let budget = SYNC_RESPONSE_BUDGET_BYTES;
    for await (const { height, bytes } of this.decidedLog.raw(req.from, req.limit)) {
      const d = decodeDecision(height, bytes);
      if (!d.ok) break;
      const size = d.d.value.length + d.d.certificateBytes.length;
      if (entries.length > 0 && size > budget) break;
      budget -= size;
      entries.push({ height, round: d.d.round, value: d.d.value, certificate: d.d.certificateBytes });
    }
    const messages: Uint8Array[] = [];
    if (req.from > this.reg.height && this.running) {
      for (const m of currentMessages(this.state)) {
        if (messages.length >= MAX_SYNC_MESSAGES) break;
        const b = wireBytes(m);
        if (b.length > budget) break;
        budget -= b.length;
        messages.push(b);
      }
    }
    return encodeSyncResponse({ decided: this.reg.height, height: this.running ? this.current : this.reg.height, entries, messages });
  }


  protected abstract flushOpsGossip(): void;
}
