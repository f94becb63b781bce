#!/usr/bin/env node
import '../node/polyfill.js';
import { capYoungGeneration } from '../node/metrics/heap.js';

// A node process caps V8's young generation before the bulk of the modules load: the
// cap can stop new space growing but not shrink it, and the CLI's own imports grow it to
// 16 MiB (see node/metrics/heap.ts). Other commands are short-lived and keep V8's sizing.
if (process.argv.slice(2).includes('start')) capYoungGeneration();
const { runCli } = await import('./run.js');

// The safety net for "exit 0 with no output": if the event loop empties while the command
// is still waiting (a library dropped a promise on a closed socket), say so and fail.
let settled = false;
process.on('beforeExit', () => {
  if (settled) return;
  settled = true;
  process.stderr.write(`fednode ${process.argv[2] ?? ''}: the command ended without a result (a connection was dropped with nothing left to wait on)\n`);
  process.exit(1);
});

runCli(process.argv.slice(2), {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  env: process.env,
}).then(
  (code) => {
    settled = true;
    process.exitCode = code;
    // Let stdout drain, then leave even if a library left a handle open.
    setTimeout(() => process.exit(code), 50).unref();
  },
  (e: unknown) => {
    settled = true;
    console.error('fednode: internal error:', e);
    process.exit(1);
  },
);
