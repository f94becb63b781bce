/** The fednode version (kept apart so the CLI can print it without loading libp2p). */
export const FEDNODE_VERSION = '0.1.0';
