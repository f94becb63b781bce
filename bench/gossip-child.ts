// One node of the gossip bench's memory cluster (spawned by bench/gossip.ts):
// argv = <seed> <psk hex> <genesis csv> <bootstrap addr | '-' | 'none'> <'cap' | 'nocap'>.
// Like `fednode start`, it caps V8's young generation BEFORE libp2p is loaded (loading
// alone grows new space to 16 MiB, which the cap can stop but not undo); 'nocap' keeps
// V8's default sizing, the baseline measured in the same run.
import '../node/polyfill.js';
import { capYoungGeneration } from '../node/metrics/heap.js';

const args = process.argv.slice(2);
if (args[4] === 'cap') capYoungGeneration();
const { child } = await import('./gossip.js');
child(args.slice(0, 4)).catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
