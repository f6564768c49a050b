import { describe, expect, it } from 'vitest';
import { gauge, relabelInto, renderFamilies, type Family } from '../../src/util/prom-text.js';

const scrape = `# HELP ttft Time to first token.
# TYPE ttft histogram
ttft_bucket{le="0.1",model="a,b"} 1
ttft_bucket{le="+Inf",model="a,b"} 2
ttft_sum{model="a,b"} 0.3
ttft_count{model="a,b"} 2
# TYPE running gauge
running{engine="native"} 3
`;

describe('re-labelling engine scrapes', () => {
  it('merges replicas into one family each, keeps HELP/TYPE once, and overrides clashing labels', () => {
    const families = new Map<string, Family>();
    relabelInto(families, scrape, { engine: 'vllm', replica_id: 'p-r0' });
    relabelInto(families, scrape, { engine: 'vllm', replica_id: 'p-r1' });
    const out = renderFamilies(families);
    expect(out.match(/# TYPE ttft histogram/g)).toHaveLength(1);
    expect(out.match(/# HELP ttft /g)).toHaveLength(1);
    // Histogram samples stay under their family, with the quoted comma intact.
    const lines = out.split('\n');
    const ttft = lines.indexOf('# TYPE ttft histogram');
    expect(lines[ttft + 1]).toBe('ttft_bucket{le="0.1",model="a,b",engine="vllm",replica_id="p-r0"} 1');
    expect(lines.filter((l) => l.startsWith('ttft_')).length).toBe(8);
    expect(out).toContain('running{engine="vllm",replica_id="p-r1"} 3');
    expect(out).not.toContain('engine="native"');
  });

  it('escapes label values and reads gauges', () => {
    const families = new Map<string, Family>();
    relabelInto(families, 'x 1\n', { model_id: 'a"b\\c' });
    expect(renderFamilies(families)).toBe('x{model_id="a\\"b\\\\c"} 1\n');
    expect(gauge(scrape, 'running')).toBe(3);
    expect(gauge(scrape, 'ttft')).toBeUndefined();
    expect(renderFamilies(new Map())).toBe('');
  });
});
