export * from './errors.js';
export * from './protocol.js';
export * from './router.js';
export { forwardHostFromLibp2p } from './libp2p-host.js';
