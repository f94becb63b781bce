// End-to-end tests run the real `fednode` binary (dist/cli/main.js) as child
// processes, so the suite compiles the project once before any test starts.
// FEDNODE_SKIP_BUILD=1 skips it (for quick runs of unit tests while editing).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export default function setup(): void {
  if (process.env['FEDNODE_SKIP_BUILD'] === '1') return;
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')], { stdio: 'inherit', cwd: root });
}
