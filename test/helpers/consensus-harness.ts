// Small in-test message router for the pure core: every broadcast is delivered synchronously
// to every other core (optionally filtered), timeouts are recorded and fired by hand.
import { identityFromSeed, type Identity } from '../../crypto/keys.js';
import { ed25519 } from '../../crypto/ed25519.js';
import { createConsensusState, DEFAULT_LIMITS, LAN_TIMEOUTS, makeValidatorSet, step, voteDigest, proposalDigest } from '../../consensus/core.js';
import { toHex } from '../../base/hex.js';
import type { ConsensusConfig, ConsensusMessage, ConsensusState, Effect, Event, SignedVote, SignerRecord, ValidatorSet, Vote, Proposal, SignedProposal } from '../../consensus/types.js';

export const CLUSTER = 'test-cluster';

export function ident(i: number): Identity {
  const seed = new Uint8Array(32);
  seed[0] = i + 1;
  seed[31] = 0x5a;
  return identityFromSeed(seed);
}

export const verify = (pk: Uint8Array, d: Uint8Array, s: Uint8Array): boolean => ed25519.verify(pk, d, s);

export function configFor(id: Identity, over: Partial<ConsensusConfig> = {}): ConsensusConfig {
  return {
    cluster: CLUSTER,
    signer: { publicKey: id.publicKey, sign: (d) => ed25519.sign(id.secretKey, d) },
    verify,
    validateValue: () => true,
    timeouts: LAN_TIMEOUTS,
    ...DEFAULT_LIMITS,
    ...over,
  };
}

export function signVote(id: Identity, vote: Vote): SignedVote {
  return { vote, signer: id.publicKey, signature: ed25519.sign(id.secretKey, voteDigest(CLUSTER, vote)) };
}
export function signProposal(id: Identity, proposal: Proposal): SignedProposal {
  return { proposal, signer: id.publicKey, signature: ed25519.sign(id.secretKey, proposalDigest(CLUSTER, proposal)) };
}

export interface SimNode {
  id: Identity;
  key: string;
  state: ConsensusState;
  effects: Effect[];
  decided: Effect[];
  persisted: SignerRecord[];
  broadcasts: ConsensusMessage[];
}

export class Router {
  readonly nodes: SimNode[];
  readonly validators: ValidatorSet;
  /** When false, the message from `from` to `to` is dropped. */
  link: (from: number, to: number, m: ConsensusMessage) => boolean = () => true;
  /** Value each proposer proposes when asked. */
  valueFor: (node: number, height: number, round: number) => Uint8Array = (n, h, r) => new TextEncoder().encode(`v-${n}-${h}-${r}`);
  private queue: { to: number; event: Event }[] = [];

  constructor(ids: Identity[], powers: number[] | null = null, configOver: (i: number) => Partial<ConsensusConfig> = () => ({})) {
    this.validators = makeValidatorSet(ids.map((id, i) => ({ publicKey: id.publicKey, power: powers?.[i] ?? 1 })), 1);
    this.nodes = ids.map((id, i) => ({ id, key: toHex(id.publicKey), state: createConsensusState(configFor(id, configOver(i))), effects: [], decided: [], persisted: [], broadcasts: [] }));
  }

  index(key: string): number {
    return this.nodes.findIndex((n) => n.key === key);
  }

  /** Feed `event` to node `i` and run deliveries until quiet. */
  send(i: number, event: Event): void {
    this.queue.push({ to: i, event });
    this.drain();
  }

  startAll(height: number, only: number[] | null = null): void {
    for (let i = 0; i < this.nodes.length; i++) if (only === null || only.includes(i)) this.queue.push({ to: i, event: { type: 'start-height', height, validators: this.validators } });
    this.drain();
  }

  /** Fire every pending timeout of `kind` at each node's current height/round. */
  fireTimeouts(kind: 'propose' | 'prevote' | 'precommit', only: number[] | null = null): void {
    for (let i = 0; i < this.nodes.length; i++) {
      if (only !== null && !only.includes(i)) continue;
      const s = this.nodes[i]!.state;
      this.queue.push({ to: i, event: { type: 'timeout', kind, height: s.height, round: s.round } });
    }
    this.drain();
  }

  private drain(): void {
    let guard = 0;
    while (this.queue.length > 0) {
      if (++guard > 100_000) throw new Error('router did not quiesce');
      const { to, event } = this.queue.shift()!;
      const node = this.nodes[to]!;
      const res = step(node.state, event);
      node.state = res.state;
      node.effects.push(...res.effects);
      for (const e of res.effects) {
        if (e.type === 'persist') node.persisted.push(e.record);
        if (e.type === 'decide') node.decided.push(e);
        if (e.type === 'request-value') this.queue.push({ to, event: { type: 'value-to-propose', height: e.height, round: e.round, value: this.valueFor(to, e.height, e.round) } });
        if (e.type === 'broadcast') {
          node.broadcasts.push(e.message);
          for (let j = 0; j < this.nodes.length; j++) {
            if (j === to || !this.link(to, j, e.message)) continue;
            this.queue.push({ to: j, event: e.message.type === 'proposal' ? { type: 'proposal', proposal: e.message.proposal } : { type: 'vote', vote: e.message.vote } });
          }
        }
      }
    }
  }
}
