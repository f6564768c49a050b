import { describe, expect, it } from 'vitest';
import { engineBusyOf } from '../../src/scheduler/engine-busy.js';

describe('engineBusyOf', () => {
  it("adds the engine's running and waiting gauges, labelled or not", () => {
    const vllm = [
      '# TYPE vllm:num_requests_running gauge',
      'vllm:num_requests_running{engine="0",model_name="m"} 3.0',
      'vllm:num_requests_waiting{engine="0",model_name="m"} 2.0',
      'vllm:num_requests_running_total 99',
    ].join('\n');
    expect(engineBusyOf('vllm', vllm)).toBe(5);
    expect(engineBusyOf('llamacpp', 'llamacpp:requests_processing 1\nllamacpp:requests_deferred 0\n')).toBe(
      1,
    );
    expect(engineBusyOf('tgi', 'tgi_batch_current_size 4\ntgi_queue_size 1')).toBe(5);
  });

  it('is undefined where the scrape has none of them', () => {
    expect(engineBusyOf('vllm', 'vllm:kv_cache_usage_perc 0.5')).toBeUndefined();
    expect(engineBusyOf('triton', 'nv_inference_count 12')).toBeUndefined();
  });
});
