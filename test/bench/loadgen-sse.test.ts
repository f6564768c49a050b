/** The load generator's SSE reader: the same events however the bytes of a stream are split. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SseDataParser } from '../../bench/loadgen/sse-data-parser.js';
import { parseSse } from '../../src/util/sse-parser.js';

const chunk = (text: string) =>
  `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":${JSON.stringify(text)}}}]}`;

const BODY = [
  ': keep-alive comment',
  '',
  chunk('é'),
  '',
  'event: ignored-name',
  'id: 7',
  chunk('日本'),
  '',
  'data: line one',
  'data:line two',
  '',
  'data: {"choices":[],"usage":{"completion_tokens":3}}',
  '',
  'data: [DONE]',
  '',
  '',
].join('\n');

const parseAll = (parts: readonly Uint8Array[]): string[] => {
  const p = new SseDataParser();
  return [...parts.flatMap((b) => p.push(b)), ...p.end()];
};

/** `bytes` cut at the given offsets. */
const cut = (bytes: Uint8Array, at: readonly number[]): Uint8Array[] => {
  const points = [...new Set(at.map((x) => x % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const p of points) {
    out.push(bytes.slice(from, p));
    from = p;
  }
  out.push(bytes.slice(from));
  return out;
};

describe('SseDataParser', () => {
  it('keeps the data of each event, joins multi-line data, skips comments and other fields', () => {
    expect(parseAll([new TextEncoder().encode(BODY)])).toEqual([
      chunk('é').slice(6),
      chunk('日本').slice(6),
      'line one\nline two',
      '{"choices":[],"usage":{"completion_tokens":3}}',
      '[DONE]',
    ]);
  });

  it('gives the same events at every single split point, in LF and CRLF streams', () => {
    for (const body of [BODY, BODY.replace(/\n/g, '\r\n')]) {
      const bytes = new TextEncoder().encode(body);
      const whole = parseAll([bytes]);
      // The repo's full WHATWG parser is the oracle for the data it yields.
      expect(whole).toEqual(parseSse(body).map((r) => r.data));
      for (let i = 1; i < bytes.length; i++)
        expect(parseAll(cut(bytes, [i])), `split at ${i}`).toEqual(whole);
    }
  });

  it('gives the same events however a stream is cut into chunks (fast-check)', () => {
    const line = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 12 }).map((s) => `data: ${s.replace(/[\r\n]/g, '')}`),
      fc.constant(''),
      fc.constant(': ping'),
      fc.constant('event: x'),
    );
    fc.assert(
      fc.property(
        fc.array(line, { maxLength: 20 }),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 12 }),
        (lines, crlf, at) => {
          const body = `${lines.join(crlf ? '\r\n' : '\n')}${crlf ? '\r\n\r\n' : '\n\n'}`;
          const bytes = new TextEncoder().encode(body);
          expect(parseAll(cut(bytes, at))).toEqual(parseSse(body).map((r) => r.data));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('yields an event left open when the stream was cut before its blank line', () => {
    const p = new SseDataParser();
    expect(p.push('data: [DONE]\n\ndata: {"a":1}')).toEqual(['[DONE]']);
    expect(p.end()).toEqual(['{"a":1}']);
  });
});
