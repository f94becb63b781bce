/**
 * Pure helpers of the simulated backend: a deterministic JSON value that fits a JSON
 * Schema (structured output and tool arguments) and cutting a token stream at a stop string.
 */

/** Nesting followed in a schema; deeper parts become null (bounds work on hostile schemas). */
const MAX_SCHEMA_DEPTH = 8;

/** A value that satisfies the common JSON Schema subset (type, properties, required, items, enum, const, anyOf/oneOf). */
export function schemaExample(schema: unknown, words: readonly string[], depth = 0): unknown {
  if (depth > MAX_SCHEMA_DEPTH || typeof schema !== 'object' || schema === null) return null;
  const s = schema as Record<string, unknown>;
  if ('const' in s) return s['const'];
  if (Array.isArray(s['enum']) && s['enum'].length > 0) return s['enum'][0];
  const alt = (Array.isArray(s['anyOf']) ? s['anyOf'] : Array.isArray(s['oneOf']) ? s['oneOf'] : null) as unknown[] | null;
  if (alt !== null && alt.length > 0) return schemaExample(alt[0], words, depth + 1);
  const types: unknown = s['type'];
  const type: unknown = Array.isArray(types) ? ((types as unknown[]).find((t) => t !== 'null') ?? types[0]) : types;
  const word = (words[depth % Math.max(1, words.length)] ?? 'simulated').trim();
  switch (type) {
    case 'object':
    case undefined: {
      const props = (typeof s['properties'] === 'object' && s['properties'] !== null ? s['properties'] : {}) as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(props)) out[k] = schemaExample(v, words, depth + 1);
      return out;
    }
    case 'array': {
      const min = typeof s['minItems'] === 'number' ? Math.min(4, Math.max(1, s['minItems'])) : 1;
      return Array.from({ length: min }, () => schemaExample(s['items'] ?? { type: 'string' }, words, depth + 1));
    }
    case 'string':
      return word;
    case 'integer':
      return typeof s['minimum'] === 'number' ? Math.ceil(s['minimum']) : 1;
    case 'number':
      return typeof s['minimum'] === 'number' ? s['minimum'] : 1.5;
    case 'boolean':
      return true;
    default:
      return null;
  }
}

/**
 * Cuts pieces before the earliest occurrence of any stop string (OpenAI semantics: the
 * stop text itself is not returned). `stopped` says whether a stop string was found.
 */
export function cutAtStop(pieces: readonly string[], stops: readonly string[]): { pieces: string[]; stopped: boolean } {
  if (stops.length === 0) return { pieces: [...pieces], stopped: false };
  const text = pieces.join('');
  let at = -1;
  for (const st of stops) {
    if (st === '') continue;
    const i = text.indexOf(st);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  if (at < 0) return { pieces: [...pieces], stopped: false };
  const out: string[] = [];
  let used = 0;
  for (const p of pieces) {
    if (used >= at) break;
    out.push(p.slice(0, at - used));
    used += p.length;
  }
  return { pieces: out.filter((p) => p.length > 0), stopped: true };
}
