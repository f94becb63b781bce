// Loaded with `node --import`: registers a resolve hook that prints every module URL the
// process loads (one `MODULE <url>` line on stderr). Used to check what a CLI command pulls in.
import { register } from 'node:module';

const hook = `export async function resolve(spec, ctx, next) {
  const r = await next(spec, ctx);
  if (!r.url.startsWith('node:')) process.stderr.write('MODULE ' + r.url + '\\n');
  return r;
}`;
register('data:text/javascript,' + encodeURIComponent(hook));
