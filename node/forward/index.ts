export * from './errors.js';
export * from './request.js';
export * from './wire.js';
export * from './server.js';
export * from './client.js';
export * from './router.js';
export { forwardHostFromLibp2p } from './libp2p-host.js';
