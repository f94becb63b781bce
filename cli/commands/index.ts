/**
 * The command table of `fednode`. To add a command: write cli/commands/<name>.ts exporting
 * a `Command` (cli/command.ts) and add an entry below; help, --json, usage errors and exit
 * codes come for free.
 *
 * Each command's module loads only when it runs (or its help is asked for): `fednode --help`
 * and `fednode status` must not pay for libp2p, LevelDB, zod or the simulator (issue #15;
 * test/unit/cli/startup.test.ts checks what each one loads). So the one-line summary lives
 * here, the flags and the code in the command's module.
 */
import type { Command } from '../command.js';

export interface CommandEntry {
  readonly name: string;
  readonly summary: string;
  load(): Promise<Command>;
}

export const COMMANDS: readonly CommandEntry[] = [
  { name: 'init', summary: 'Create a data directory: identity key, config, store, control token. With --new-cluster, also a new cluster with this node as its first member.', load: async () => (await import('./init.js')).initCommand },
  { name: 'start', summary: 'Run the node in the foreground: JSON-lines logs on stderr, one readiness line on stdout, clean shutdown on SIGINT/SIGTERM (exit 0).', load: async () => (await import('./start.js')).startCommand },
  { name: 'invite', summary: 'Print an invite token for a new node (asks the running node: the token carries its live addresses). Share it like a password: it holds the cluster key.', load: async () => (await import('./invite.js')).inviteCommand },
  { name: 'join', summary: 'Join a cluster with an invite token from `fednode invite`: creates the data directory with the cluster id, pre-shared key and bootstrap addresses.', load: async () => (await import('./join.js')).joinCommand },
  { name: 'status', summary: 'Show this node: id, addresses, cluster, members, power profile, GPU and load (asks the running node).', load: async () => (await import('./status.js')).statusCommand },
  { name: 'peers', summary: 'List the cluster members this node knows, with their latest advert and its staleness (asks the running node).', load: async () => (await import('./peers.js')).peersCommand },
  { name: 'doctor', summary: 'Check the data directory, key permissions, config, ports, mDNS, nvidia-smi, power readings and peers; say how to fix each failure.', load: async () => (await import('./doctor.js')).doctorCommand },
  { name: 'cluster', summary: 'Start N nodes as child processes on loopback (own data dirs; node-1 founds the cluster, the rest join by invite and are admitted by a committed member.add), print their status, stop all on Ctrl-C.', load: async () => (await import('./cluster.js')).clusterCommand },
  { name: 'infer', summary: 'Stream a chat completion through the cluster; says which node served it and the tokens/s.', load: async () => (await import('./infer.js')).inferCommand },
  { name: 'models', summary: 'List every model a live member serves, and which nodes serve it.', load: async () => (await import('./infer.js')).modelsCommand },
  { name: 'propose', summary: 'Propose a pattern op through consensus and wait for its commit: prints the height and certificate (signers, power) or the rejection (exit 1).', load: async () => (await import('./propose.js')).proposeCommand },
  { name: 'patterns', summary: 'List the registry decided by consensus: members, pending membership changes, route policy, model aliases, quality gates, patterns.', load: async () => (await import('./patterns.js')).patternsCommand },
  { name: 'log', summary: 'Show decided heights: height, round, ops, commit-certificate signers and the registry hash after each.', load: async () => (await import('./log.js')).logCommand },
  { name: 'approve', summary: 'Admit a joining node (clusters with consensus.admission = approve): proposes its member.add and waits for the commit. Without <peer>, lists the joins waiting.', load: async () => (await import('./approve.js')).approveCommand },
  { name: 'route', summary: 'Show the ranking this node would use now for a model: each candidate\'s score, its terms and any fallback reason.', load: async () => (await import('./route.js')).routeCommand },
  { name: 'simnet', summary: 'Run the deterministic network simulator over the real consensus core and routing policy; exit 1 on any violation.', load: async () => (await import('./simnet.js')).simnetCommand },
];
