// Parsers of backends' own load reports (fixtures: test/fixtures/engines/README.md says which are hand-written).
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseLlamaServerProps, parseLlamaServerSlots, parseOllamaPs, parseVllmMetrics } from '../../../node/backends/capacity.js';

const FIX = join(import.meta.dirname, '..', '..', 'fixtures');
const json = (f: string): unknown => JSON.parse(readFileSync(join(FIX, f), 'utf8'));

describe('backend load reports', () => {
  it('llama-server /slots: one slot per entry, is_processing counts as in flight', () => {
    expect(parseLlamaServerSlots(json('engines/llama-server-slots.json'))).toEqual({ capacity: 2, inFlight: 1, queued: 0, source: 'llama-server /slots' });
    // older builds: state 0 idle, 1 processing
    expect(parseLlamaServerSlots([{ id: 0, state: 1 }, { id: 1, state: 0 }, { id: 2, state: 1 }])).toMatchObject({ capacity: 3, inFlight: 2 });
  });

  it('llama-server /props: total_slots as capacity only', () => {
    expect(parseLlamaServerProps(json('engines/llama-server-props.json'))).toEqual({ capacity: 4, inFlight: 0, queued: 0, source: 'llama-server /props (capacity only)' });
  });

  it('vLLM /metrics: running and waiting summed over models; capacity from config', () => {
    const text = readFileSync(join(FIX, 'engines/vllm-metrics.txt'), 'utf8');
    expect(parseVllmMetrics(text, 16)).toEqual({ capacity: 16, inFlight: 2, queued: 3, source: 'vLLM /metrics + config capacity' });
    expect(parseVllmMetrics(text, null)?.capacity).toBe(2);
  });

  it('Ollama /api/ps (recorded): loaded models x configured parallelism', () => {
    expect(parseOllamaPs(json('infer/ollama-ps.json'), 4)).toMatchObject({ capacity: 4, source: 'ollama /api/ps (1 loaded) x parallel 4' });
    expect(parseOllamaPs({ models: [] }, 2)?.capacity).toBe(2);
  });

  it('a body of another shape is no report, never a guess', () => {
    expect(parseLlamaServerSlots({ error: 'slots disabled' })).toBeNull();
    expect(parseLlamaServerSlots([])).toBeNull();
    expect(parseLlamaServerSlots([{ id: 0 }])).toBeNull();
    expect(parseLlamaServerSlots(new Array(5000).fill({ is_processing: false }))).toBeNull();
    expect(parseLlamaServerProps({ total_slots: 0 })).toBeNull();
    expect(parseLlamaServerProps({ total_slots: 'four' })).toBeNull();
    expect(parseVllmMetrics('# nothing here\nother_metric 1\n', 8)).toBeNull();
    expect(parseVllmMetrics('vllm:num_requests_running 1\n', 8)).toBeNull(); // waiting missing
    expect(parseVllmMetrics('vllm:num_requests_running -1\nvllm:num_requests_waiting 0\n', 8)).toBeNull();
    expect(parseOllamaPs({ models: 'x' }, 1)).toBeNull();
  });
});
