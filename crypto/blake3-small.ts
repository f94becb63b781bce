/**
 * Keyed BLAKE3 of one chunk (inputs of at most 1 KiB: every vote, status and advert envelope)
 * in a WebAssembly function of our own, generated here at module load (no binary in the tree).
 *
 * Why (issue 15, envelope create): hash-wasm's BLAKE3 costs ~0.54 µs for a 142-byte vote, and
 * a good part of it is its JS wrapper (the key re-written on every init, a view and a copy per
 * update, a fresh result array), not the compression. Here one call writes the input, runs
 * every block of the chunk inside WASM (the compression fully unrolled, `i32.rotr` native, all
 * state in locals) and leaves the digest in WASM memory, where the signer can read it without a
 * copy (memory off the V8 heap). A plain-JS BLAKE3 was measured slower than hash-wasm (no
 * native rotate), so this is WASM.
 *
 * Scope: keyed hash mode only, 32-byte output, one chunk (counter 0): CHUNK_START on the first
 * block, CHUNK_END | ROOT on the last, KEYED_HASH on all (BLAKE3 spec, section 2). Longer inputs
 * go to the general path (blake3.ts). Tests compare with @noble/hashes for every length 0..1024.
 */

/** Largest input this path takes: one BLAKE3 chunk. */
export const SMALL_MAX_BYTES = 1024;
/** Keys kept in WASM memory (one per digest context; blake3.ts allows 256 contexts). */
export const SMALL_KEY_SLOTS = 256;

// memory layout (one 64 KiB page): digest | keys | input
const OUT = 0;
const KEYS = 64;
const INPUT = KEYS + 32 * SMALL_KEY_SLOTS;

const IV = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
const MSG_PERMUTATION = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
const KEYED_HASH = 16;
const CHUNK_START_END_ROOT_LAST = 2 | 8;

// locals: 0 keyOff, 1 len (params); then these
const L_OFF = 2;
const L_BLOCKLEN = 3;
const L_FLAGS = 4;
const L_LAST = 5;
const L_CV = 6; // 8
const L_M = 14; // 16
const L_V = 30; // 16
const LOCALS = 44; // beyond the two params

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  let v = n | 0;
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const op = {
  get: (i: number) => [0x20, i],
  set: (i: number) => [0x21, i],
  const: (n: number) => [0x41, ...sleb(n)],
  load: (offset: number) => [0x28, 2, ...uleb(offset)],
  store: (offset: number) => [0x36, 2, ...uleb(offset)],
  add: [0x6a],
  sub: [0x6b],
  or: [0x72],
  xor: [0x73],
  rotr: [0x78],
  ltU: [0x49],
  eqz: [0x45],
  select: [0x1b],
};

/** BLAKE3's G on the state locals v[a], v[b], v[c], v[d] with message words m[mx], m[my]. */
function g(a: number, b: number, c: number, d: number, mx: number, my: number): number[] {
  const v = (i: number): number => L_V + i;
  const m = (i: number): number => L_M + i;
  const addInto = (x: number, ...terms: number[]): number[] => [...op.get(x), ...terms.flatMap((t) => [...op.get(t), ...op.add]), ...op.set(x)];
  const xorRot = (x: number, y: number, r: number): number[] => [...op.get(x), ...op.get(y), ...op.xor, ...op.const(r), ...op.rotr, ...op.set(x)];
  return [
    ...addInto(v(a), v(b), m(mx)),
    ...xorRot(v(d), v(a), 16),
    ...addInto(v(c), v(d)),
    ...xorRot(v(b), v(c), 12),
    ...addInto(v(a), v(b), m(my)),
    ...xorRot(v(d), v(a), 8),
    ...addInto(v(c), v(d)),
    ...xorRot(v(b), v(c), 7),
  ];
}

/** The seven rounds, the message schedule applied at generation time. */
function rounds(): number[] {
  let s = Array.from({ length: 16 }, (_, i) => i);
  const code: number[] = [];
  for (let r = 0; r < 7; r++) {
    const m = (i: number): number => s[i]!;
    code.push(...g(0, 4, 8, 12, m(0), m(1)), ...g(1, 5, 9, 13, m(2), m(3)), ...g(2, 6, 10, 14, m(4), m(5)), ...g(3, 7, 11, 15, m(6), m(7)));
    code.push(...g(0, 5, 10, 15, m(8), m(9)), ...g(1, 6, 11, 12, m(10), m(11)), ...g(2, 7, 8, 13, m(12), m(13)), ...g(3, 4, 9, 14, m(14), m(15)));
    s = MSG_PERMUTATION.map((p) => s[p]!);
  }
  return code;
}

/** h(keyOff, len): keyed BLAKE3 of memory[INPUT, INPUT + len) (zero-padded to its block) into memory[OUT, OUT + 32). */
function body(): number[] {
  const c: number[] = [];
  for (let i = 0; i < 8; i++) c.push(...op.get(0), ...op.load(4 * i), ...op.set(L_CV + i));
  c.push(...op.const(0), ...op.set(L_OFF));
  c.push(0x03, 0x40); // loop
  // blockLen = len - off; last = blockLen <= 64; if not last, blockLen = 64
  c.push(...op.get(1), ...op.get(L_OFF), ...op.sub, ...op.set(L_BLOCKLEN));
  c.push(...op.get(L_BLOCKLEN), ...op.const(65), ...op.ltU, ...op.set(L_LAST));
  c.push(...op.get(L_LAST), ...op.eqz, 0x04, 0x40, ...op.const(64), ...op.set(L_BLOCKLEN), 0x0b);
  // flags = KEYED_HASH | (off == 0 ? CHUNK_START : 0) | (last ? CHUNK_END | ROOT : 0)
  c.push(...op.const(KEYED_HASH), ...op.get(L_OFF), ...op.eqz, ...op.or);
  c.push(...op.const(CHUNK_START_END_ROOT_LAST), ...op.const(0), ...op.get(L_LAST), ...op.select, ...op.or, ...op.set(L_FLAGS));
  for (let i = 0; i < 16; i++) c.push(...op.get(L_OFF), ...op.load(INPUT + 4 * i), ...op.set(L_M + i));
  for (let i = 0; i < 8; i++) c.push(...op.get(L_CV + i), ...op.set(L_V + i));
  for (let i = 0; i < 4; i++) c.push(...op.const(IV[i]!), ...op.set(L_V + 8 + i));
  c.push(...op.const(0), ...op.set(L_V + 12), ...op.const(0), ...op.set(L_V + 13));
  c.push(...op.get(L_BLOCKLEN), ...op.set(L_V + 14), ...op.get(L_FLAGS), ...op.set(L_V + 15));
  c.push(...rounds());
  for (let i = 0; i < 8; i++) c.push(...op.get(L_V + i), ...op.get(L_V + 8 + i), ...op.xor, ...op.set(L_CV + i));
  c.push(...op.get(L_OFF), ...op.const(64), ...op.add, ...op.set(L_OFF));
  c.push(...op.get(L_LAST), ...op.eqz, 0x0d, 0); // br_if to the loop's start
  c.push(0x0b); // end loop
  for (let i = 0; i < 8; i++) c.push(...op.const(0), ...op.get(L_CV + i), ...op.store(OUT + 4 * i));
  c.push(0x0b); // end function
  return c;
}

function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

function moduleBytes(): Uint8Array {
  const name = (s: string): number[] => [...uleb(s.length), ...[...s].map((ch) => ch.charCodeAt(0))];
  const locals = [1, ...uleb(LOCALS), 0x7f]; // one group: LOCALS x i32
  const fbody = [...locals, ...body()];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 2, 0x7f, 0x7f, 0]), // type 0: (i32, i32) -> ()
    ...section(3, [1, 0]), // function 0 has type 0
    ...section(5, [1, 0, 1]), // one memory, min 1 page
    ...section(7, [2, ...name('m'), 2, 0, ...name('h'), 0, 0]), // exports: memory "m", function "h"
    ...section(10, [1, ...uleb(fbody.length), ...fbody]),
  ]);
}

export interface SmallKeyed {
  /** Keyed BLAKE3 of `data` (<= SMALL_MAX_BYTES) with the key in `slot`; the result is a view of WASM memory, valid until the next call. */
  digestView(slot: number, data: Uint8Array): Uint8Array;
  /** Put a 32-byte key into `slot` (< SMALL_KEY_SLOTS). */
  setKey(slot: number, key: Uint8Array): void;
}

/** The part of the WebAssembly API used here (the project's TypeScript lib has no WebAssembly types). */
interface Wasm {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: { m: { buffer: ArrayBuffer }; h: (keyOff: number, len: number) => void } };
}

/** The compiled function, or null where WebAssembly cannot run (the general path serves all). */
export function createSmallKeyed(): SmallKeyed | null {
  const wasm = (globalThis as unknown as { WebAssembly?: Wasm }).WebAssembly;
  if (wasm === undefined) return null;
  let exports: InstanceType<Wasm['Instance']>['exports'];
  try {
    exports = new wasm.Instance(new wasm.Module(moduleBytes())).exports;
  } catch {
    return null;
  }
  const memory = exports.m;
  const h = exports.h;
  const mem = new Uint8Array(memory.buffer); // one page, never grown: the views stay valid
  const out = mem.subarray(OUT, OUT + 32);
  return {
    setKey(slot, key) {
      if (!(Number.isInteger(slot) && slot >= 0 && slot < SMALL_KEY_SLOTS) || key.byteLength !== 32) {
        throw new RangeError(`blake3-small: key slot must be 0..${SMALL_KEY_SLOTS - 1} and the key 32 bytes (slot ${slot}, ${key.byteLength} bytes)`);
      }
      mem.set(key, KEYS + 32 * slot);
    },
    digestView(slot, data) {
      const n = data.byteLength;
      // past one chunk the function would hash with the wrong flags: a wrong digest, never silently
      if (n > SMALL_MAX_BYTES || !(slot >= 0 && slot < SMALL_KEY_SLOTS)) {
        throw new RangeError(`blake3-small: at most ${SMALL_MAX_BYTES} bytes in key slot 0..${SMALL_KEY_SLOTS - 1} (${n} bytes, slot ${slot})`);
      }
      mem.set(data, INPUT);
      // zero the rest of the last block (the compression reads whole blocks)
      const end = n === 0 ? 64 : (n + 63) & ~63;
      for (let i = INPUT + n; i < INPUT + end; i++) mem[i] = 0;
      h(KEYS + 32 * slot, n);
      return out;
    },
  };
}
