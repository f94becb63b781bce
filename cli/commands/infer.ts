import type { Command, CommandContext } from '../command.js';
import { flagNumber, flagString } from '../command.js';
import type { NodeStatus } from '../../node/runtime/node.js';
import { infer, listModels } from '../../node/api/client.js';
import { UsageError } from '../args.js';

/** The API of the node on this data directory, unless --url names another. */
async function apiUrl(ctx: CommandContext): Promise<string> {
  const url = flagString(ctx.args, 'url');
  if (url !== undefined) {
    if (!/^https?:\/\//.test(url)) throw new UsageError(`--url must be an http(s) URL, got '${url}'`, ctx.args.positionals[0] ?? null);
    return url.replace(/\/+$/, '');
  }
  const s = await (await ctx.control()).get<NodeStatus>('/status');
  if (s.apiUrl === null) throw new UsageError('the running node has no inference API enabled (see `fednode help config`)', null);
  return s.apiUrl;
}

const urlFlag = { name: 'url', type: 'string', placeholder: '<url>', description: 'a node API to use instead of the node on this data dir (e.g. http://127.0.0.1:8787)' } as const;
const keyFlag = { name: 'api-key', type: 'string', placeholder: '<key>', description: 'bearer key, for a node API listening beyond loopback' } as const;

export const inferCommand: Command = {
  name: 'infer',
  flags: [
    { name: 'model', short: 'm', type: 'string', placeholder: '<model>', description: 'model id (see `fednode models`)' },
    { name: 'system', type: 'string', placeholder: '<text>', description: 'system prompt' },
    { name: 'max-tokens', type: 'int', min: 1, max: 1_000_000, placeholder: '<n>', description: 'completion token limit' },
    urlFlag,
    keyFlag,
  ],
  positionals: [{ name: 'prompt', description: 'the user message (quote it)', required: true, rest: true }],
  details: 'example: fednode infer --model sim-small "why is the sky blue?"',
  async run(ctx) {
    const model = flagString(ctx.args, 'model');
    if (model === undefined || model === '') throw new UsageError('infer needs --model <model> (list them with `fednode models`)', 'infer');
    const prompt = ctx.args.positionals.join(' ');
    const url = await apiUrl(ctx);
    const ac = new AbortController();
    const onSignal = (): void => ac.abort();
    process.once('SIGINT', onSignal);
    try {
      const maxTokens = flagNumber(ctx.args, 'max-tokens');
      const system = flagString(ctx.args, 'system');
      const r = await infer({
        url,
        apiKey: flagString(ctx.args, 'api-key') ?? null,
        model,
        prompt,
        ...(maxTokens !== undefined ? { maxTokens } : {}),
        ...(system !== undefined ? { system } : {}),
        signal: ac.signal,
        ...(ctx.json ? {} : { onToken: (t: string) => ctx.out(t) }),
      });
      const tps = r.tokensPerSecond === null ? '-' : r.tokensPerSecond.toFixed(1);
      if (ctx.json) ctx.result(r, '');
      else ctx.err(`\n-- served by ${r.servedBy}, ${r.completionTokens} tokens, ${tps} tokens/s, first token ${r.firstTokenMs?.toFixed(0) ?? '-'} ms, total ${r.totalMs.toFixed(0)} ms\n`);
      return 0;
    } finally {
      process.removeListener('SIGINT', onSignal);
    }
  },
};

export const modelsCommand: Command = {
  name: 'models',
  flags: [urlFlag, keyFlag],
  positionals: [],
  async run(ctx) {
    const url = await apiUrl(ctx);
    const models = await listModels({ url, apiKey: flagString(ctx.args, 'api-key') ?? null });
    const lines = models.length === 0 ? ['no models: no live member serves any'] : models.map((m) => `${m.id.padEnd(32)} ${m.simulated ? '(simulated) ' : ''}served by ${m.servedBy.join(', ')}`);
    ctx.result({ models }, lines.join('\n') + '\n');
    return 0;
  },
};
