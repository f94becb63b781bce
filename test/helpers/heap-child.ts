// Child process for heap.test.ts: applies the young-generation cap (or not), allocates
// like a busy relay (mostly short-lived objects, a bounded set that survives a while),
// and prints what V8's new space grew to.
import { capYoungGeneration, newSpaceBytes } from '../../node/metrics/heap.js';

const mode = process.argv[2];
const cap = mode === 'cap' ? capYoungGeneration(8) : null;
const keep: unknown[] = [];
// in event-loop turns of 10k objects, as a node handles messages (the cap acts between turns)
for (let turn = 0; turn < 300; turn++) {
  for (let j = 0; j < 10_000; j++) {
    const i = turn * 10_000 + j;
    const o = { a: i, b: `x${i}`, c: [i] };
    if (i % 50 === 0) {
      keep.push(o);
      if (keep.length > 20_000) keep.shift(); // bounded: ~20k survivors at a time
    }
  }
  await new Promise((r) => setImmediate(r));
}
// the observer runs after GCs asynchronously: let pending entries be delivered
await new Promise((r) => setTimeout(r, 50));
process.stdout.write(JSON.stringify({ newSpaceMiB: newSpaceBytes() / 2 ** 20, mode: cap?.mode ?? null, switches: cap?.switches() ?? 0, kept: keep.length }) + '\n');
