// Lay the operator's config (mounted read-only) over the node's own config.json: every
// top-level field of the mounted file replaces the node's, except `bootstrap` and `name`,
// which are kept from the node's when the mounted file leaves them out (join wrote them).
// The API key comes from FEDNODE_API_KEY (never baked into an image or a compose file);
// a mounted config that listens beyond loopback without one is refused here, by name.
// Usage: node prepare-config.mjs <mounted config.json> <data dir config.json>
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

const [src, dst] = process.argv.slice(2);
if (!src || !dst) {
  process.stderr.write('usage: prepare-config.mjs <mounted config.json> <data dir config.json>\n');
  process.exit(2);
}
const read = (f) => {
  try {
    return JSON.parse(readFileSync(f, 'utf8'));
  } catch (e) {
    process.stderr.write(`prepare-config: cannot read ${f}: ${e.message}\n`);
    process.exit(1);
  }
};
const mounted = read(src);
const own = read(dst);
const out = { ...own, ...mounted };
for (const k of ['bootstrap', 'name']) if (mounted[k] === undefined && own[k] !== undefined) out[k] = own[k];
const key = process.env.FEDNODE_API_KEY ?? '';
const host = out.api?.host ?? '127.0.0.1';
if (key !== '') out.api = { ...(out.api ?? {}), apiKey: key };
const loopback = ['127.0.0.1', '::1', 'localhost'].includes(host);
if (!loopback && (out.api?.apiKey ?? null) === null) {
  process.stderr.write(`prepare-config: api.host is ${host} (beyond loopback): set FEDNODE_API_KEY (16+ characters) in the container's environment\n`);
  process.exit(1);
}
if (key !== '' && key.length < 16) {
  process.stderr.write('prepare-config: FEDNODE_API_KEY must be at least 16 characters\n');
  process.exit(1);
}
writeFileSync(`${dst}.tmp`, JSON.stringify(out, null, 2) + '\n', { mode: 0o600 });
renameSync(`${dst}.tmp`, dst);
