import { afterAll, describe, expect, it } from 'vitest';
import { VerifyPool, MAX_BATCH } from '../../../crypto/verify-pool.js';
import type { VerifyItem } from '../../../crypto/verify-pool.js';
import { identityFromSeed } from '../../../crypto/keys.js';
import { ed25519 } from '../../../crypto/ed25519.js';

const pool = new VerifyPool(2);
afterAll(async () => {
  await pool.close();
});

function items(n: number): VerifyItem[] {
  const out: VerifyItem[] = [];
  for (let i = 0; i < n; i++) {
    const id = identityFromSeed(new Uint8Array(32).fill((i % 250) + 1));
    const message = new Uint8Array(32).fill(i & 0xff);
    out.push({ publicKey: id.publicKey, message, signature: ed25519.sign(id.secretKey, message) });
  }
  return out;
}

describe('verify pool (worker threads)', () => {
  it('verifies a batch across workers and flags exactly the bad items', async () => {
    const all = items(600);
    const badAt = new Set([0, 17, 255, 256, 599]);
    for (const i of badAt) {
      const sig = all[i]!.signature.slice();
      sig[5]! ^= 1;
      all[i] = { ...all[i]!, signature: sig };
    }
    all[300] = { ...all[300]!, publicKey: new Uint8Array(31) }; // malformed: false, no crash
    badAt.add(300);
    const out = await pool.verifyAll(all, 100);
    for (let i = 0; i < all.length; i++) expect(out[i], `item ${i}`).toBe(badAt.has(i) ? 0 : 1);
  });

  it('refuses batches over the bound and work after close', async () => {
    await expect(pool.verifyBatch(new Array<VerifyItem>(MAX_BATCH + 1).fill(items(1)[0]!))).rejects.toMatchObject({ code: 'ERR_VERIFY_POOL_FULL' });
    const p = new VerifyPool(1);
    await p.close();
    await expect(p.verifyBatch(items(1))).rejects.toMatchObject({ code: 'ERR_VERIFY_POOL_CLOSED' });
  });
});
