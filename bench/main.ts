import '../node/polyfill.js';
// `npm run bench -- <suite> [--json]`: each suite lives in bench/<suite>.ts and
// exports `run(opts)`, returning one JSON-able object and printing a human table
// unless --json is given (then exactly one JSON object goes to stdout).
const suites: Record<string, () => Promise<{ run: (opts: BenchOptions) => Promise<unknown> }>> = {
  crypto: () => import('./crypto.js'),
  gossip: () => import('./gossip.js'),
  consensus: () => import('./consensus.js'),
  infer: () => import('./infer.js'),
  engine: () => import('./engine.js'),
  simnet: () => import('./simnet.js'),
  cli: () => import('./cli.js'),
  mesh: () => import('./mesh.js'),
  idle: () => import('./idle.js'),
};

export interface BenchOptions {
  json: boolean;
  args: readonly string[];
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const json = argv.includes('--json');
  const rest = argv.filter((a) => a !== '--json');
  const name = rest[0];
  const load = name === undefined ? undefined : suites[name];
  if (load === undefined) {
    console.error(`usage: npm run bench -- <${Object.keys(suites).join('|')}> [--json]`);
    return 2;
  }
  const mod = await load();
  const result = await mod.run({ json, args: rest.slice(1) });
  if (json) process.stdout.write(JSON.stringify(result) + '\n');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
