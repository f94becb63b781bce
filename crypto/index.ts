export * from './errors.js';
export * from './cbor.js';
export * from './blake3.js';
export * from './ed25519.js';
export * from './keys.js';
export * from './envelope.js';
export * from './verify-cache.js';
export * from './verify-pool.js';
