// The pure-core rules (consensus/ and routing/): no I/O, clock, randomness,
// timers, libp2p or storage. Shared by eslint.config.js and test/unit/meta/lint.test.ts,
// which proves they fire.
export const impureModules = [
  { group: ['node:*', 'fs', 'net', 'dgram', 'http', 'https', 'child_process', 'os', 'worker_threads', 'timers'], message: 'pure core: no Node I/O modules (inputs in, effects out)' },
  { group: ['libp2p', '@libp2p/*', '@chainsafe/*', 'level', 'classic-level'], message: 'pure core: no networking or storage libraries' },
  { group: ['**/node/*', '**/node/**', '**/cli/**', '**/simnet/**'], message: 'pure core may import only base/, crypto/ and itself' },
];
export const impureGlobals = [
  { name: 'setTimeout', message: 'pure core: schedule a timeout as an effect' },
  { name: 'setInterval', message: 'pure core: schedule a timeout as an effect' },
  { name: 'setImmediate', message: 'pure core: no timers' },
  { name: 'queueMicrotask', message: 'pure core: no scheduling' },
  { name: 'performance', message: 'pure core: time comes in as an input' },
  { name: 'process', message: 'pure core: no process state' },
  { name: 'fetch', message: 'pure core: no I/O' },
];
export const impureSyntax = [
  { selector: "MemberExpression[object.name='Date'][property.name='now']", message: 'pure core: time comes in as an input' },
  { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'pure core: time comes in as an input' },
  { selector: "MemberExpression[object.name='Math'][property.name='random']", message: 'pure core: randomness comes in as an input (seeded)' },
  { selector: "MemberExpression[object.name='crypto'][property.name=/^(getRandomValues|randomUUID|randomBytes)$/]", message: 'pure core: randomness comes in as an input' },
];

