import type { Command } from '../command.js';
import type { PatternsJson } from '../../node/runtime/consensus-routes.js';
import { opSummary } from '../../node/runtime/consensus-ops.js';
import type { PatternJson } from '../../node/runtime/consensus-ops.js';
import { flagString } from '../command.js';
import { answered } from './consensus-common.js';
import { table } from './format.js';

export const patternsCommand: Command = {
  name: 'patterns',
  flags: [{ name: 'name', type: 'string', placeholder: '<name>', description: 'show one pattern with its whole content (the listing cuts contents to 1 KiB)' }],
  positionals: [],
  async run(ctx) {
    const client = await ctx.control();
    const one = flagString(ctx.args, 'name');
    if (one !== undefined) {
      const x = await answered(() => client.get<PatternJson>(`/consensus/pattern?name=${encodeURIComponent(one)}`));
      const q = x.quality === null ? '-' : Object.entries(x.quality).map(([k, v]) => `${k}=${v}`).join(' ');
      ctx.result(x, `pattern   ${x.name}  version ${x.version}  decided at height ${x.height}\nhash      ${x.contentHash}\ntags      ${x.tags.join(', ') || '-'}\nquality   ${q}\n\n${x.content}\n`);
      return 0;
    }
    const p = await answered(() => client.get<PatternsJson>('/consensus/patterns'));
    const r = p.registry;
    const out: string[] = [`registry at height ${p.height}  hash ${p.registryHash}`, '', `members (${r.members.length}, in force since height ${r.membersSince})`];
    out.push(table(['PEER', 'NAME', 'POWER'], r.members.map((m) => [m.peer, m.name || '-', String(m.power)])).trimEnd());
    if (r.pending.length > 0) {
      out.push('', 'pending membership changes');
      for (const c of r.pending) out.push(`  at height ${c.effectiveHeight}: ${opSummary(c.op)}`);
    }
    const w = Object.entries(r.routePolicy.weights).map(([k, v]) => `${k}=${v}`).join(' ');
    out.push('', `route policy   weights ${w || '-'}  battery floor ${r.routePolicy.batteryFloorPct}%  temperature ceiling ${r.routePolicy.temperatureCeilingC} C`);
    out.push(`model aliases  ${r.aliases.length === 0 ? '-' : r.aliases.map((a) => `${a.alias} -> ${a.model}`).join(', ')}`);
    const g = Object.entries(r.qualityGates).map(([k, v]) => `${k}>=${v}`).join(' ');
    out.push(`quality gates  ${g || '-'}`, `used invites   ${r.usedInvites} (one-time invites consumed by decided member.adds)`, '', `patterns (${r.patterns.length})`);
    if (r.patterns.length > 0) {
      out.push(
        table(
          ['NAME', 'VERSION', 'HEIGHT', 'HASH', 'TAGS', 'QUALITY', 'CONTENT'],
          r.patterns.map((x) => [
            x.name,
            String(x.version),
            String(x.height),
            x.contentHash.slice(0, 16),
            x.tags.join(',') || '-',
            x.quality === null ? '-' : Object.entries(x.quality).map(([k, v]) => `${k}=${v}`).join(','),
            JSON.stringify(x.content.length > 40 ? `${x.content.slice(0, 40)}…` : x.content),
          ]),
        ).trimEnd(),
      );
    }
    ctx.result(p, out.join('\n') + '\n');
    return 0;
  },
};
