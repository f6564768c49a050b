/** The streamed text chunk's JSON, built from its constant parts, is `chunkBody`'s byte for byte. */
import { describe, expect, it } from 'vitest';
import { chunkBody, textChunkEncoder, type ResponseHead } from '../../src/http/openai/openai-response.js';

const head: ResponseHead = {
  id: 'cmpl-7f3c',
  created: 1_764_633_600,
  model: 'bench',
  systemFingerprint: 'fp_0123456789ab',
};
const texts = ['', 'Once', ' upon a "time"\n', 'ünïcødé 😀', '\u0000\u001f\\', '\u2028\u2029', '\ud800'];

describe('textChunkEncoder', () => {
  for (const op of ['completion', 'chat'] as const)
    for (const includeUsage of [false, true])
      it(`${op}, usage ${includeUsage ? 'on' : 'off'}: the same bytes as chunkBody`, () => {
        const encode = textChunkEncoder(op, head, includeUsage);
        for (const text of texts)
          expect(encode(text)).toBe(
            JSON.stringify(chunkBody(op, head, { kind: 'text', text }, includeUsage)),
          );
      });

  it('a model name holding the marker text still encodes exactly (the generic path)', () => {
    const odd = { ...head, model: '\u0000llorch-text\u0000' };
    const encode = textChunkEncoder('completion', odd, false);
    expect(encode('x')).toBe(
      JSON.stringify(chunkBody('completion', odd, { kind: 'text', text: 'x' }, false)),
    );
    expect(encode('\u0000llorch-text\u0000')).toBe(
      JSON.stringify(chunkBody('completion', odd, { kind: 'text', text: '\u0000llorch-text\u0000' }, false)),
    );
  });
});
