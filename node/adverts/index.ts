/** Public API of adverts: see README.md in this folder. */
export * from './advert.js';
export * from './collect.js';
export * from './envelope.js';
export * from './peer-table.js';
export * from './profile.js';
export * from './publisher.js';
