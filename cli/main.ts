#!/usr/bin/env node
import '../node/polyfill.js';
import { runCli } from './run.js';

runCli(process.argv.slice(2), {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  env: process.env,
}).then(
  (code) => {
    process.exitCode = code;
    // Let stdout drain, then leave even if a library left a handle open.
    setTimeout(() => process.exit(code), 50).unref();
  },
  (e: unknown) => {
    console.error('fednode: internal error:', e);
    process.exit(1);
  },
);
