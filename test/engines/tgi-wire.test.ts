/**
 * The TGI adapter's pure parts against transcripts derived from TGI's source, for the releases
 * before and since v2.3.0 (stream `input_length`) and v2.1.0 (`/info` field names);
 * test/fixtures/tgi/README.md.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../src/engines/adapter.js';
import { TgiStreamParser } from '../../src/engines/tgi/parse-stream.js';
import type { Info } from '../../src/engines/tgi/wire-types.js';
import { gauge } from '../../src/util/prom-text.js';
import { releasedBefore } from '../../src/util/release-version.js';
import { parseSse } from '../../src/util/sse-parser.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/tgi/${name}`, import.meta.url), 'utf8');

function parse(name: string): { evs: EngineEvent[]; p: TgiStreamParser } {
  const p = new TgiStreamParser();
  return { evs: parseSse(fixture(name)).flatMap((r) => p.push(r.data)), p };
}

describe('TGI streams, both release lines', () => {
  it('v2.3.0 and later: prompt tokens from details.input_length', () => {
    const { evs, p } = parse('generate-stream.sse');
    expect(p.inputLengthReported).toBe(true);
    expect(evs.at(-1)).toEqual({ kind: 'done', tokensIn: 6, tokensOut: 4, stopReason: 'eos' });
  });

  it('1.x: details without input_length; the parser says so, for the adapter to count them', () => {
    const { evs, p } = parse('generate-stream-1x.sse');
    expect(p.done).toBe(true);
    expect(p.inputLengthReported).toBe(false);
    expect(evs.filter((e) => e.kind === 'tokens').map((e) => (e.kind === 'tokens' ? e.text : ''))).toEqual([
      ' The',
      ' sky',
      '',
    ]);
    expect(evs.at(-1)).toMatchObject({ kind: 'done', tokensOut: 3, stopReason: 'eos' });
  });

  it('a stop sequence ends with stopReason "stop"', () => {
    expect(parse('generate-stream-stop.sse').evs.at(-1)).toMatchObject({ stopReason: 'stop', tokensIn: 5 });
  });
});

describe('TGI /info and /metrics', () => {
  it('the release decides the stream shape: 1.4.5 and 2.2 are before 2.3.0, 3.0.1 is not', () => {
    const old = JSON.parse(fixture('info-1x.json')) as Info;
    const current = JSON.parse(fixture('info.json')) as Info;
    expect(releasedBefore(old.version, [2, 3, 0])).toBe(true);
    expect(releasedBefore('2.2.0', [2, 3, 0])).toBe(true);
    expect(releasedBefore(current.version, [2, 3, 0])).toBe(false);
    expect(old.max_input_length).toBe(1024);
    expect(current.max_input_tokens).toBe(4095);
  });

  it('token metrics are histograms named as TGI documents them (no _total counters)', () => {
    const text = fixture('metrics.txt');
    expect(text).toMatch(/^# TYPE tgi_request_generated_tokens histogram$/m);
    expect(text).toMatch(/^# TYPE tgi_request_input_length histogram$/m);
    expect(text).not.toMatch(/_total\b/);
    expect(gauge(text, 'tgi_batch_current_size')).toBe(5);
  });
});
