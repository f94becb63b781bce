/**
 * A bounded set of envelope digests whose signatures were verified: the same
 * vote or advert arrives from several mesh peers, and only the first copy pays
 * for Ed25519. Keyed by the BLAKE3 digest of the signed bytes (which covers the
 * signer), so a cache hit means "these exact bytes were signed by that key".
 */
export const VERIFIED_CACHE_DEFAULT_ENTRIES = 16_384; // ~1 MB of keys; a few seconds of consensus + advert traffic at 100 nodes

export class VerifiedCache {
  private readonly entries = new Set<string>();
  readonly maxEntries: number;
  hits = 0;
  misses = 0;

  constructor(maxEntries: number = VERIFIED_CACHE_DEFAULT_ENTRIES) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError(`maxEntries must be a positive integer, got ${maxEntries}`);
    this.maxEntries = maxEntries;
  }

  get size(): number {
    return this.entries.size;
  }

  has(digest: Uint8Array): boolean {
    const hit = this.entries.has(keyOf(digest));
    if (hit) this.hits++;
    else this.misses++;
    return hit;
  }

  add(digest: Uint8Array): void {
    const k = keyOf(digest);
    if (this.entries.has(k)) return;
    if (this.entries.size >= this.maxEntries) {
      // Insertion order = age: evict the oldest (FIFO is enough: duplicates of a
      // message arrive within one gossip heartbeat of the first copy).
      const oldest = this.entries.values().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.add(k);
  }
}

function keyOf(digest: Uint8Array): string {
  return Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString('latin1');
}
