import { describe, it, expect } from 'vitest';
import { checkAgreement, checkAll, checkCatchUp, checkDoubleSign, checkIntegrity, checkLiveness, checkRegistryHashes, checkSafety, checkValidity } from '../../../simnet/checkers.js';
import type { DecisionRecord, History } from '../../../simnet/checkers.js';

/** A clean 4-node history (node 3 Byzantine) at 2 heights; each test breaks one thing. */
function clean(): History {
  const d = (node: number, height: number, valueHex: string, extra: Partial<DecisionRecord> = {}): DecisionRecord => ({ node, height, round: 0, valueHex, valid: true, atUs: height * 1000 + node, registryHash: `r${height}`, ...extra });
  return {
    nodes: 4,
    f: 1,
    honest: [true, true, true, false],
    decisions: [d(0, 1, 'aa'), d(1, 1, 'aa'), d(2, 1, 'aa'), d(0, 2, 'bb'), d(1, 2, 'bb'), d(2, 2, 'bb')],
    signed: [
      { node: 0, kind: 'prevote', height: 1, round: 0, payload: 'aa' },
      { node: 0, kind: 'prevote', height: 1, round: 0, payload: 'aa' }, // identical re-send is fine
      { node: 0, kind: 'precommit', height: 1, round: 0, payload: 'aa' },
      { node: 3, kind: 'prevote', height: 1, round: 0, payload: 'zz' },
      { node: 3, kind: 'prevote', height: 1, round: 0, payload: 'yy' }, // Byzantine: not checked
    ],
    finalLogs: [['aa', 'bb'], ['aa', 'bb'], ['aa', 'bb'], []],
    targetHeight: 2,
    liveness: { stableAtUs: 1500, heightAtStable: 2, maxRoundAtStable: 0 },
  };
}

describe('checkers on crafted histories', () => {
  it('a clean history has no violation (Byzantine misbehaviour is not blamed on honest nodes)', () => {
    expect(checkAll(clean())).toEqual([]);
  });

  it('agreement fires on two honest values at one height', () => {
    const h = clean();
    h.decisions = h.decisions.map((d) => (d.node === 2 && d.height === 2 ? { ...d, valueHex: 'cc' } : d));
    const v = checkAgreement(h);
    expect(v).toHaveLength(1);
    expect(v[0]).toMatchObject({ kind: 'agreement', height: 2, nodes: [0, 2] });
    // A Byzantine node's different decision is not a violation.
    const g = clean();
    g.decisions = [...g.decisions, { ...g.decisions[0]!, node: 3, valueHex: 'ff' }];
    expect(checkAgreement(g)).toEqual([]);
  });

  it('validity fires on an invalid decided value', () => {
    const h = clean();
    h.decisions = h.decisions.map((d, i) => (i === 4 ? { ...d, valid: false } : d));
    expect(checkValidity(h)).toMatchObject([{ kind: 'validity', height: 2, nodes: [1] }]);
  });

  it('integrity fires on a height decided twice and on a rewritten log', () => {
    const h = clean();
    h.decisions = [...h.decisions, { ...h.decisions[0]! }];
    expect(checkIntegrity(h).map((v) => v.kind)).toEqual(['integrity-double-decide']);
    const g = clean();
    g.finalLogs = [['aa', 'xx'], ['aa', 'bb'], ['aa', 'bb'], []];
    expect(checkIntegrity(g)).toMatchObject([{ kind: 'integrity-log-rewritten', height: 2, nodes: [0] }]);
  });

  it('double-sign fires on two different honest votes at one (height, round, type)', () => {
    const h = clean();
    h.signed = [...h.signed, { node: 1, kind: 'precommit', height: 1, round: 2, payload: 'aa' }, { node: 1, kind: 'precommit', height: 1, round: 2, payload: 'nil' }];
    expect(checkDoubleSign(h)).toMatchObject([{ kind: 'honest-double-sign', height: 1, nodes: [1] }]);
  });

  it('registry hash fires when the same log gives different states', () => {
    const h = clean();
    h.decisions = h.decisions.map((d) => (d.node === 1 && d.height === 1 ? { ...d, registryHash: 'other' } : d));
    expect(checkRegistryHashes(h)).toMatchObject([{ kind: 'registry-hash', height: 1 }]);
  });

  it('liveness fires when the height after the heal is never decided or takes more than f+2 rounds', () => {
    const h = clean();
    h.liveness = { stableAtUs: 1500, heightAtStable: 3, maxRoundAtStable: 0 };
    expect(checkLiveness(h)).toMatchObject([{ kind: 'liveness-after-heal', height: 3 }]);
    const g = clean();
    g.decisions = g.decisions.map((d) => (d.height === 2 ? { ...d, round: 4 } : d)); // bound = 0 + 1 + 2 = 3
    expect(checkLiveness(g)).toMatchObject([{ kind: 'liveness-after-heal', height: 2 }]);
    const ok = clean();
    ok.decisions = ok.decisions.map((d) => (d.height === 2 ? { ...d, round: 3 } : d));
    expect(checkLiveness(ok)).toEqual([]);
  });

  it('catch-up fires on an honest node left behind', () => {
    const h = clean();
    h.finalLogs = [['aa', 'bb'], ['aa'], ['aa', 'bb'], []];
    expect(checkCatchUp(h)).toMatchObject([{ kind: 'catch-up', nodes: [1] }]);
    expect(checkSafety(h)).toEqual([]);
  });

  it('catch-up exempts a node that left the cluster (churn), and only that node', () => {
    const h = clean();
    h.finalLogs = [['aa', 'bb'], ['aa'], ['aa'], []];
    h.left = [false, true, false, false];
    expect(checkCatchUp(h)).toMatchObject([{ kind: 'catch-up', nodes: [2] }]);
  });
});
