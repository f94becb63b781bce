import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ed25519, nobleEd25519, nodeEd25519, sodiumEd25519 } from '../../../crypto/ed25519.js';
import type { Ed25519 } from '../../../crypto/ed25519.js';
import { identityFromSeed } from '../../../crypto/keys.js';

const h = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

// RFC 8032 §7.1, TEST 1-3.
const RFC8032 = [
  {
    name: 'TEST 1 (empty message)',
    seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    pub: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    msg: '',
    sig: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    name: 'TEST 2 (one byte)',
    seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    pub: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    msg: '72',
    sig: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    name: 'TEST 3 (two bytes)',
    seed: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    pub: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    msg: 'af82',
    sig: '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
];

const impls: Ed25519[] = [nobleEd25519, nodeEd25519, ...(sodiumEd25519 === null ? [] : [sodiumEd25519])];

describe('Ed25519 implementations', () => {
  it('the default is the native one when the addon loads', () => {
    expect(ed25519.name).toBe(sodiumEd25519 === null ? 'node:crypto' : 'sodium-native');
  });

  for (const impl of impls) {
    describe(impl.name, () => {
      for (const v of RFC8032) {
        it(`RFC 8032 ${v.name}: derives the key, signs and verifies`, () => {
          const id = identityFromSeed(h(v.seed));
          expect(hex(id.publicKey)).toBe(v.pub);
          expect(hex(impl.sign(id.secretKey, h(v.msg)))).toBe(v.sig);
          expect(impl.verify(h(v.pub), h(v.msg), h(v.sig))).toBe(true);
        });
      }

      it('signInto writes the RFC 8032 signature into a view of a larger buffer, and nothing around it', () => {
        const v = RFC8032[2]!;
        const id = identityFromSeed(h(v.seed));
        const frame = new Uint8Array(new ArrayBuffer(64 + 16)).fill(0xaa);
        impl.signInto(frame.subarray(8, 72), id.secretKey, h(v.msg));
        expect(hex(frame.subarray(8, 72))).toBe(v.sig);
        expect([...frame.subarray(0, 8), ...frame.subarray(72)].every((b) => b === 0xaa)).toBe(true);
      });

      it('rejects a flipped bit in message, signature or key', () => {
        const v = RFC8032[1]!;
        const msg = h(v.msg);
        const sig = h(v.sig);
        const pub = h(v.pub);
        const badMsg = Uint8Array.of(msg[0]! ^ 1);
        const badSig = sig.slice();
        badSig[10]! ^= 0x20;
        const badPub = pub.slice();
        badPub[3]! ^= 1;
        expect(impl.verify(pub, badMsg, sig)).toBe(false);
        expect(impl.verify(pub, msg, badSig)).toBe(false);
        expect(impl.verify(badPub, msg, sig)).toBe(false);
      });

      it('returns false (never throws) on wrong lengths and garbage', () => {
        expect(impl.verify(new Uint8Array(31), new Uint8Array(1), new Uint8Array(64))).toBe(false);
        expect(impl.verify(new Uint8Array(32), new Uint8Array(1), new Uint8Array(63))).toBe(false);
        expect(impl.verify(new Uint8Array(32).fill(0xff), new Uint8Array(1), new Uint8Array(64).fill(0xff))).toBe(false);
      });

      it('rejects a non-canonical S (S + L), which strict RFC 8032 forbids', () => {
        const v = RFC8032[0]!;
        const sig = h(v.sig);
        // L = 2^252 + 27742317777372353535851937790883648493, little-endian
        const L = h('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010');
        const s = sig.slice(32);
        let carry = 0;
        for (let i = 0; i < 32; i++) {
          const x = s[i]! + L[i]! + carry;
          s[i] = x & 0xff;
          carry = x >> 8;
        }
        const malleated = new Uint8Array(64);
        malleated.set(sig.subarray(0, 32));
        malleated.set(s, 32);
        expect(impl.verify(h(v.pub), h(v.msg), malleated)).toBe(false);
      });
    });
  }

  // 128 rounds: every signature byte is tampered twice, each time another bit (the pure-JS
  // implementation makes each round cost ~20 ms; 300 rounds were 7 s of the unit tier).
  it('all implementations agree on 128 random keys and messages, including tampered ones', () => {
    for (let i = 0; i < 128; i++) {
      const id = identityFromSeed(new Uint8Array(randomBytes(32)));
      const msg = new Uint8Array(randomBytes(i % 97));
      const sigs = impls.map((impl) => hex(impl.sign(id.secretKey, msg)));
      expect(new Set(sigs).size).toBe(1); // Ed25519 is deterministic
      const sig = h(sigs[0]!);
      const tampered = sig.slice();
      tampered[i % 64]! ^= 1 << (i % 8);
      for (const impl of impls) {
        expect(impl.verify(id.publicKey, msg, sig)).toBe(true);
        expect(impl.verify(id.publicKey, msg, tampered)).toBe(false);
      }
    }
  });
});
