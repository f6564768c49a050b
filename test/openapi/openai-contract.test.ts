/**
 * contracts/openapi/openai.yaml: it parses, shares the version and error codes of OrchQueue v1,
 * is served by a running orchestrator, and its schemas hold OpenAI's shapes (the examples below
 * are the shapes of OpenAI's own API reference, github.com/openai/openai-openapi).
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ERROR_CODES } from '../../src/errors/codes.js';
import { API_VERSION } from '../../src/http/generated/api-version.js';
import { loadOpenApi } from '../../src/http/openapi.js';
import { simPool, startHarness, TEST_KEYS, type Harness } from '../support/harness.js';
import { openAiSseChunks, validateOpenAi } from '../support/openai-schema.js';

const docs = loadOpenApi();
const enumOf = (doc: { components: { schemas: Record<string, unknown> } }, name: string) =>
  (doc.components.schemas[name] as { enum: string[] }).enum;

describe('openai.yaml', () => {
  it('is OpenAPI 3.1 with the version of the other documents and every OpenAI path', () => {
    expect(docs.openai.openapi).toBe('3.1.0');
    expect(docs.openai.info.version).toBe(docs.data.info.version);
    expect(docs.openai.info.version).toBe(API_VERSION);
    expect(Object.keys(docs.openai.paths).sort()).toEqual([
      '/v1/chat/completions',
      '/v1/completions',
      '/v1/embeddings',
      '/v1/models',
      '/v1/models/{id}',
    ]);
  });

  it('resolves every $ref locally', () => {
    const refs: string[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v !== null && typeof v === 'object')
        for (const [k, x] of Object.entries(v)) {
          if (k === '$ref' && typeof x === 'string') refs.push(x);
          else walk(x);
        }
    };
    walk(docs.openai);
    expect(refs.length).toBeGreaterThan(50);
    for (const r of refs) {
      let cur: unknown = docs.openai;
      for (const p of r.replace(/^#\//, '').split('/'))
        cur = (cur as Record<string, unknown> | undefined)?.[p];
      expect(cur, r).toBeDefined();
    }
  });

  it("has data.yaml's ErrorCode enum, which is every code the server knows", () => {
    expect(enumOf(docs.openai, 'ErrorCode')).toEqual(enumOf(docs.data, 'ErrorCode'));
    expect([...enumOf(docs.openai, 'ErrorCode')].sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it('documents the request headers and the backpressure headers', () => {
    const op = docs.openai.paths['/v1/chat/completions']?.['post'] as {
      parameters: { $ref: string }[];
      responses: Record<string, { $ref: string }>;
    };
    const params = op.parameters.map((p) => {
      const name = p.$ref.split('/').pop() ?? '';
      return (docs.openai.components['parameters'] as Record<string, { name: string }>)[name]?.name;
    });
    expect(params).toEqual([
      'X-Correlation-Id',
      'X-LLorch-Priority',
      'X-LLorch-Deadline-Ms',
      'X-LLorch-Session',
    ]);
    const responses = docs.openai.components['responses'] as Record<
      string,
      { headers: Record<string, unknown> }
    >;
    const tooMany = op.responses['429']?.$ref.split('/').pop() ?? '';
    expect(Object.keys(responses[tooMany]?.headers ?? {})).toEqual(
      expect.arrayContaining(['Retry-After', 'X-Backoff-Ms', 'X-Correlation-Id']),
    );
    for (const status of ['400', '401', '403', '409', '429', '500', '503'])
      expect(op.responses[status], status).toBeDefined();
  });
});

describe('validateOpenAi: OpenAI shapes', () => {
  const base = { id: 'chatcmpl-1', created: 1764600000, model: 'tiny' };

  it('accepts a chat completion, with text or with tool calls', () => {
    validateOpenAi('ChatCompletion', {
      ...base,
      object: 'chat.completion',
      system_fingerprint: 'llamacpp-b1',
      choices: [
        { index: 0, message: { role: 'assistant', content: 'Hi.' }, finish_reason: 'stop', logprobs: null },
      ],
      usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
    });
    validateOpenAi('ChatCompletion', {
      ...base,
      object: 'chat.completion',
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: null,
            tool_calls: [
              { id: 'call_0', type: 'function', function: { name: 'get_weather', arguments: '{}' } },
            ],
          },
          finish_reason: 'tool_calls',
          logprobs: null,
        },
      ],
      usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
    });
  });

  it('refuses what OpenAI clients would not parse', () => {
    const good = {
      ...base,
      object: 'chat.completion',
      choices: [
        { index: 0, message: { role: 'assistant', content: 'Hi.' }, finish_reason: 'stop', logprobs: null },
      ],
      usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
    };
    validateOpenAi('ChatCompletion', good);
    expect(() => validateOpenAi('ChatCompletion', { ...good, object: 'chat.completion.chunk' })).toThrow(
      /object/,
    );
    expect(() =>
      validateOpenAi('ChatCompletion', { ...good, choices: [{ ...good.choices[0], finish_reason: 'eos' }] }),
    ).toThrow(/finish_reason/);
    expect(() => validateOpenAi('ChatCompletion', { ...good, usage: { prompt_tokens: 5 } })).toThrow(
      /completion_tokens/,
    );
    expect(() => validateOpenAi('ChatCompletion', { ...good, tokens_out: 2 })).toThrow(/additional/);
    expect(() => validateOpenAi('NoSuchSchema', {})).toThrow(/no schema/);
  });

  it('accepts the chunks of a streamed chat completion, framed as OpenAI frames them', () => {
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices, ...extra })}\n\n`;
    const text =
      chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null, logprobs: null }]) +
      chunk([{ index: 0, delta: { content: 'Hel' }, finish_reason: null }]) +
      chunk([
        {
          index: 0,
          delta: {
            tool_calls: [
              { index: 0, id: 'call_0', type: 'function', function: { name: 'f', arguments: '' } },
            ],
          },
          finish_reason: null,
        },
      ]) +
      chunk([{ index: 0, delta: {}, finish_reason: 'stop' }], { usage: null }) +
      chunk([], { usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 } }) +
      'data: [DONE]\n\n';
    const chunks = openAiSseChunks(text);
    expect(chunks).toHaveLength(5);
    for (const c of chunks) validateOpenAi('ChatCompletionChunk', c);
    expect(() =>
      validateOpenAi('ChatCompletionChunk', { ...base, object: 'chat.completion', choices: [] }),
    ).toThrow();
    expect(() => openAiSseChunks(chunk([]))).toThrow(/DONE/);
    expect(() => openAiSseChunks('event: token\ndata: {}\n\ndata: [DONE]\n\n')).toThrow(/single-line data/);
  });

  it('accepts completions, embeddings, models and the error body', () => {
    validateOpenAi('Completion', {
      ...base,
      id: 'cmpl-1',
      object: 'text_completion',
      choices: [{ index: 0, text: ' there', finish_reason: 'length', logprobs: null }],
      usage: { prompt_tokens: 4, completion_tokens: 1, total_tokens: 5 },
    });
    validateOpenAi('CompletionChunk', {
      ...base,
      object: 'text_completion',
      choices: [{ index: 0, text: ' there', finish_reason: null }],
    });
    expect(() =>
      validateOpenAi('Completion', {
        ...base,
        object: 'text_completion',
        choices: [{ index: 0, text: '', finish_reason: 'tool_calls', logprobs: null }],
        usage: { prompt_tokens: 4, completion_tokens: 1, total_tokens: 5 },
      }),
    ).toThrow(/finish_reason/);
    validateOpenAi('CreateEmbeddingResponse', {
      object: 'list',
      data: [{ object: 'embedding', index: 0, embedding: [0.1, -0.2] }],
      model: 'embed',
      usage: { prompt_tokens: 1, total_tokens: 1 },
    });
    validateOpenAi('ModelList', {
      object: 'list',
      data: [{ id: 'tiny', object: 'model', created: 0, owned_by: 'llama-orch' }],
    });
    validateOpenAi('ErrorResponse', {
      error: {
        message: 'n: only 1 is supported',
        type: 'invalid_request_error',
        code: 'INVALID_PARAMS',
        param: 'n',
      },
    });
    expect(() =>
      validateOpenAi('ErrorResponse', {
        error: { message: 'x', type: 'server_error', code: 'OOPS', param: null },
      }),
    ).toThrow(/code/);
    // OpenAI's body has all four keys; `param` is null when no parameter is at fault.
    expect(() =>
      validateOpenAi('ErrorResponse', { error: { message: 'x', type: 'server_error', code: 'INTERNAL' } }),
    ).toThrow(/param/);
  });

  it('takes the requests OpenAI clients send, extras included, and refuses unsupported values', () => {
    validateOpenAi('ChatCompletionRequest', {
      model: 'tiny',
      messages: [
        { role: 'developer', content: 'Be terse.' },
        { role: 'user', content: [{ type: 'text', text: 'Weather?' }] },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'c0', type: 'function', function: { name: 'w', arguments: '{}' } }],
        },
        { role: 'tool', tool_call_id: 'c0', content: 'sunny' },
      ],
      stream: true,
      stream_options: { include_usage: true },
      max_completion_tokens: 16,
      temperature: 0.2,
      top_k: 20,
      min_p: 0.05,
      repeat_penalty: 1.1,
      stop: 'END',
      seed: 3,
      n: 1,
      logprobs: false,
      tools: [{ type: 'function', function: { name: 'w', parameters: { type: 'object' } } }],
      tool_choice: 'auto',
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object' } } },
      parallel_tool_calls: true,
    });
    validateOpenAi('CompletionRequest', {
      model: 'tiny',
      prompt: ['Once'],
      stop: ['.', '!'],
      max_tokens: null,
    });
    validateOpenAi('EmbeddingRequest', { model: 'embed', input: ['a', 'b'], encoding_format: 'float' });
    expect(() => validateOpenAi('ChatCompletionRequest', { model: 'tiny', messages: [], n: 1 })).toThrow(
      /messages/,
    );
    expect(() =>
      validateOpenAi('ChatCompletionRequest', {
        model: 'tiny',
        messages: [{ role: 'user', content: 'x' }],
        n: 2,
      }),
    ).toThrow();
    expect(() =>
      validateOpenAi('ChatCompletionRequest', {
        model: 'tiny',
        messages: [{ role: 'user', content: 'x' }],
        logprobs: true,
      }),
    ).toThrow();
    expect(() => validateOpenAi('CompletionRequest', { model: 'tiny', prompt: ['a', 'b'] })).toThrow(
      /prompt/,
    );
  });
});

describe('openai.yaml served', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ auth: { keys: TEST_KEYS }, pools: [simPool('docs-openai', 'llamacpp')] });
  });
  afterAll(() => h.close());

  it('serves the document as written, without credentials, and lists it on /docs', async () => {
    const res = await fetch(`${h.url}/openapi/openai.yaml`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/yaml/);
    const text = await res.text();
    expect(text).toBe(await readFile('contracts/openapi/openai.yaml', 'utf8'));
    expect((parse(text) as { info: { version: string } }).info.version).toBe(API_VERSION);
    expect(await (await fetch(`${h.url}/docs`)).text()).toContain("url: '/openapi/openai.yaml'");
  });
});
