import { describe, expect, it } from 'vitest';
import { SseParser, parseSse } from '../../src/util/sse-parser.js';

const body =
  'event: started\r\nid: 1\r\ndata: {"queue_position":0}\r\n\r\n: comment\n\nevent: token\nid: 2\ndata: {"t":"é","i":0}\n\ndata: a\ndata: b\n\n';

describe('SseParser', () => {
  it('parses events, ids, comments and multi-line data', () => {
    expect(parseSse(body)).toEqual([
      { event: 'started', id: '1', data: '{"queue_position":0}' },
      { event: 'token', id: '2', data: '{"t":"é","i":0}' },
      { event: undefined, id: '2', data: 'a\nb' },
    ]);
  });

  it('gives the same records however the bytes are split', () => {
    const bytes = new TextEncoder().encode(body);
    const expected = parseSse(body);
    for (let cut = 1; cut < bytes.length; cut++) {
      const p = new SseParser();
      const got = [...p.push(bytes.slice(0, cut)), ...p.push(bytes.slice(cut)), ...p.push('\n\n')];
      expect(got, `split at ${cut}`).toEqual(expected);
    }
  });
});
