/**
 * The Triton adapter's pure parts against fixtures derived from Triton's and TensorRT-LLM's own
 * sources (test/fixtures/triton/README.md), for both stock ensembles: the legacy one (inputs
 * `random_seed`, no `exclude_input_in_output`, no counts) and the current one (`seed`,
 * `exclude_input_in_output`, `return_num_input_tokens` / `return_num_output_tokens`).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { EngineEvent, GenerateRequest } from '../../src/engines/adapter.js';
import { engineDirOf, parseEngineConfig, readEngineFacts } from '../../src/engines/triton/engine-facts.js';
import { ensembleInterface } from '../../src/engines/triton/ensemble-interface.js';
import { mapTritonError } from '../../src/engines/triton/map-error.js';
import { guideOf, toTritonRequest, tritonSupport } from '../../src/engines/triton/map-request.js';
import { checkSupport } from '../../src/engines/request-support.js';
import { TritonStreamParser } from '../../src/engines/triton/parse-stream.js';
import type { ModelConfig } from '../../src/engines/triton/wire-types.js';
import { OrchError } from '../../src/errors/orch-error.js';
import { gauge } from '../../src/util/prom-text.js';
import { parseSse } from '../../src/util/sse-parser.js';

const fixture = (name: string) =>
  readFileSync(new URL(`../fixtures/triton/${name}`, import.meta.url), 'utf8');
const config = (name: string) => JSON.parse(fixture(name)) as ModelConfig;
const LEGACY = ensembleInterface(config('ensemble-config-legacy.json'));
const CURRENT = ensembleInterface(config('ensemble-config-current.json'));

const req: GenerateRequest = {
  prompt: 'p',
  maxTokens: 8,
  seed: 2 ** 40 + 5,
  determinism: 'strict',
  samplerProfileVersion: 'v1',
  cachePrompt: true,
};

function parse(text: string, p: TritonStreamParser): EngineEvent[] {
  return parseSse(text).flatMap((r) => p.push(r.data));
}
const tokens = (evs: readonly EngineEvent[]) =>
  evs.filter((e): e is Extract<EngineEvent, { kind: 'tokens' }> => e.kind === 'tokens');

function failure(f: () => unknown): OrchError {
  try {
    f();
  } catch (err) {
    if (err instanceof OrchError) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

describe('what each stock ensemble declares', () => {
  it('legacy: random_seed, no exclude_input_in_output, no token counts', () => {
    expect(LEGACY).toMatchObject({
      model: 'ensemble',
      seedInput: 'random_seed',
      countsInput: false,
      countsOutput: false,
    });
    expect(LEGACY.inputs.has('exclude_input_in_output')).toBe(false);
    expect(LEGACY.maxBatchSize).toBe(64);
  });

  it('current: seed, exclude_input_in_output and both token counts', () => {
    expect(CURRENT).toMatchObject({ seedInput: 'seed', countsInput: true, countsOutput: true });
    expect(CURRENT.inputs.has('exclude_input_in_output')).toBe(true);
    expect(CURRENT.inputs.has('random_seed')).toBe(false);
  });
});

describe('requests name only declared inputs', () => {
  it.each([
    ['legacy', LEGACY],
    ['current', CURRENT],
  ] as const)('%s: every key of the body is a declared input', (_name, ensemble) => {
    for (const r of [req, { ...req, ignoreEos: true }]) {
      const body = toTritonRequest(r, ensemble);
      for (const key of Object.keys(body)) expect(ensemble.inputs.has(key), key).toBe(true);
    }
  });

  it('legacy: the seed in random_seed; no exclude_input_in_output, no count requests', () => {
    const body = toTritonRequest(req, LEGACY);
    expect(body).toMatchObject({
      text_input: 'p',
      max_tokens: 8,
      stream: true,
      random_seed: 2 ** 40 + 5,
      top_k: 40,
      top_p: 0.95,
      temperature: 0.8,
      repetition_penalty: 1,
    });
    for (const k of [
      'seed',
      'exclude_input_in_output',
      'return_num_input_tokens',
      'return_num_output_tokens',
      'end_id',
    ])
      expect(body).not.toHaveProperty(k);
  });

  it('current: the seed in seed, the prompt excluded, both counts requested', () => {
    const body = toTritonRequest(req, CURRENT);
    expect(body).toMatchObject({
      seed: 2 ** 40 + 5,
      exclude_input_in_output: true,
      return_num_input_tokens: true,
      return_num_output_tokens: true,
    });
    expect(body).not.toHaveProperty('random_seed');
    expect(toTritonRequest({ ...req, ignoreEos: true }, CURRENT)['end_id']).toBe(-1);
  });

  it('an ensemble without a seed input cannot honour sampler profile v1: INVALID_PARAMS naming seed', () => {
    const noSeed = {
      ...CURRENT,
      inputs: new Set([...CURRENT.inputs].filter((i) => i !== 'seed')),
      seedInput: undefined,
    };
    const err = failure(() => toTritonRequest(req, noSeed));
    expect(err.code).toBe('INVALID_PARAMS');
    expect(err.message).toMatch(/^seed: ensemble 'ensemble' declares neither 'seed' nor 'random_seed'/);
  });

  it('ignore_eos on an ensemble without end_id is refused rather than dropped', () => {
    const noEnd = { ...LEGACY, inputs: new Set([...LEGACY.inputs].filter((i) => i !== 'end_id')) };
    expect(failure(() => toTritonRequest({ ...req, ignoreEos: true }, noEnd)).message).toContain("'end_id'");
  });
});

describe('stream parsing', () => {
  it('counts from num_output_tokens (two tokens in one response) and the prompt from num_input_tokens', () => {
    const p = new TritonStreamParser();
    const evs = parse(fixture('generate-stream-counts.sse'), p);
    expect(tokens(evs).map((t) => [t.count, t.text])).toEqual([
      [1, ' Machine'],
      [2, ' learning is'],
      [1, ' a'],
    ]);
    expect(p.finish(999, 4)).toEqual([{ kind: 'done', tokensIn: 6, tokensOut: 4, stopReason: 'length' }]);
  });

  it('without counts: one token per response, the prompt count given by the caller', () => {
    const p = new TritonStreamParser();
    const evs = parse(fixture('generate-stream.sse'), p);
    expect(
      tokens(evs)
        .map((t) => t.text)
        .join(''),
    ).toBe(' Machine learning is');
    expect(p.finish(6, 3)).toEqual([{ kind: 'done', tokensIn: 6, tokensOut: 3, stopReason: 'length' }]);
    const q = new TritonStreamParser();
    parse(fixture('generate-stream.sse'), q);
    expect(q.finish(6, 10).at(-1)).toMatchObject({ stopReason: 'eos' });
  });

  it('text of a response that reports no token rides on the next one', () => {
    const p = new TritonStreamParser();
    expect(p.push('{"text_output":"a","num_output_tokens":0}')).toEqual([]);
    expect(p.push('{"text_output":"b","num_output_tokens":1}')).toEqual([
      { kind: 'tokens', count: 1, ids: [], text: 'ab' },
    ]);
    expect(p.push('{"text_output":"c","num_output_tokens":0}')).toEqual([]);
    expect(p.finish(1, 8)).toEqual([
      { kind: 'tokens', count: 1, ids: [], text: 'c' },
      { kind: 'done', tokensIn: 1, tokensOut: 2, stopReason: 'eos' },
    ]);
  });

  it('an error object mid-stream → WORKER_RESET for CUDA OOM', () => {
    const p = new TritonStreamParser();
    expect(() => parse(fixture('generate-stream-error.sse'), p)).toThrow(
      expect.objectContaining({ code: 'WORKER_RESET', engine: 'triton' }),
    );
  });
});

describe('engine facts', () => {
  it("the engine directory's config.json states the TensorRT-LLM version and max_seq_len", () => {
    expect(parseEngineConfig(fixture('engine-config.json'))).toEqual({ version: '0.17.0', maxSeqLen: 4096 });
    expect(parseEngineConfig('{"build_config":{}}')).toEqual({});
    expect(parseEngineConfig('not json')).toEqual({});
  });

  it('reads it from gpt_model_path of the tensorrt_llm model; in-flight batching from gpt_model_type', async () => {
    const trt = config('tensorrt_llm-config.json');
    expect(engineDirOf(trt)).toBe('/engines/llama-3.1-8b/fp16/1-gpu');
    const read: string[] = [];
    const facts = await readEngineFacts(trt, async (p) => {
      read.push(p);
      return fixture('engine-config.json');
    });
    expect(read).toEqual(['/engines/llama-3.1-8b/fp16/1-gpu/config.json']);
    expect(facts).toEqual({
      version: '0.17.0',
      maxSeqLen: 4096,
      inflightBatching: true,
      guidedDecoding: false,
    });
  });

  it('nothing declared, nothing invented: an unreadable engine or an unfilled placeholder stays unknown', async () => {
    const trt = config('tensorrt_llm-config.json');
    const gone = await readEngineFacts(trt, () => Promise.reject(new Error('ENOENT')));
    expect(gone).toEqual({
      version: undefined,
      maxSeqLen: undefined,
      inflightBatching: true,
      guidedDecoding: false,
    });
    const unfilled: ModelConfig = {
      ...trt,
      parameters: { ...trt.parameters, gpt_model_path: { string_value: '${engine_dir}' } },
    };
    expect(engineDirOf(unfilled)).toBeUndefined();
    const v1: ModelConfig = {
      ...trt,
      parameters: { ...trt.parameters, gpt_model_type: { string_value: 'V1' } },
    };
    expect((await readEngineFacts(v1, () => Promise.reject(new Error('x')))).inflightBatching).toBe(false);
  });
});

describe('errors and metrics', () => {
  it('maps error messages to spec codes', () => {
    expect(mapTritonError(400, fixture('error-400.json')).code).toBe('INVALID_PARAMS');
    expect(mapTritonError(400, '{"error":"Request for unknown model: \'x\' is not ready"}').code).toBe(
      'POOL_UNREADY',
    );
    expect(mapTritonError(503, '{"error":"too busy"}').code).toBe('REPLICA_EXHAUSTED');
    expect(mapTritonError(500, '{"error":"segfault"}').code).toBe('INTERNAL');
  });

  it('reads active requests from the TRT-LLM metrics', () => {
    expect(gauge(fixture('metrics.txt'), 'nv_trt_llm_request_metrics', 'request_type="active"')).toBe(7);
  });
});

describe('sampling fields, stop words and guided decoding map to declared inputs', () => {
  const CURRENT_SUPPORT = tritonSupport(CURRENT, { guidedDecoding: true, chat: true });
  // The oldest stock ensemble (tensorrtllm_backend 039e5b4, 2023-09-20): `runtime_top_k` /
  // `runtime_top_p`, no `frequency_penalty`, no `stop_words`, no guided decoding.
  const OLDEST = ensembleInterface({
    name: 'ensemble',
    input: [
      'text_input',
      'max_tokens',
      'stream',
      'runtime_top_k',
      'runtime_top_p',
      'temperature',
      'repetition_penalty',
      'presence_penalty',
      'random_seed',
    ].map((name) => ({ name, data_type: 'TYPE_FP32', dims: [1] })),
  });

  it('absent fields: the same bytes as before sampling fields existed', () => {
    expect(JSON.stringify(toTritonRequest(req, CURRENT))).toBe(
      JSON.stringify({
        text_input: 'p',
        max_tokens: 8,
        stream: true,
        seed: 2 ** 40 + 5,
        top_k: 40,
        top_p: 0.95,
        temperature: 0.8,
        repetition_penalty: 1,
        exclude_input_in_output: true,
        return_num_input_tokens: true,
        return_num_output_tokens: true,
      }),
    );
  });

  it('each sampling field the task sets reaches its input', () => {
    const body = toTritonRequest(
      {
        ...req,
        sampling: {
          temperature: 0.2,
          topK: 5,
          topP: 0.5,
          repeatPenalty: 1.1,
          presencePenalty: 0.3,
          frequencyPenalty: 0.4,
        },
      },
      CURRENT,
    );
    expect(body).toMatchObject({
      temperature: 0.2,
      top_k: 5,
      top_p: 0.5,
      repetition_penalty: 1.1,
      presence_penalty: 0.3,
      frequency_penalty: 0.4,
    });
    expect(body).not.toHaveProperty('min_p');
  });

  it('the oldest ensemble: top_k and top_p travel in runtime_top_k / runtime_top_p', () => {
    const body = toTritonRequest({ ...req, sampling: { topK: 3 } }, OLDEST);
    expect(body).toMatchObject({ runtime_top_k: 3, runtime_top_p: 0.95, random_seed: 2 ** 40 + 5 });
    expect(body).not.toHaveProperty('top_k');
  });

  it('stop → stop_words as a BYTES list; response_format → the guide inputs', () => {
    expect(toTritonRequest({ ...req, stop: ['\n\n', 'END'] }, CURRENT)['stop_words']).toEqual([
      '\n\n',
      'END',
    ]);
    expect(toTritonRequest({ ...req, stop: [] }, CURRENT)).not.toHaveProperty('stop_words');
    const json = toTritonRequest({ ...req, responseFormat: { type: 'json_object' } }, CURRENT);
    expect(json['guided_decoding_guide_type']).toBe('json');
    expect(json).not.toHaveProperty('guided_decoding_guide');
    const schema = { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] };
    const js = toTritonRequest(
      { ...req, responseFormat: { type: 'json_schema', json_schema: { name: 's', schema } } },
      CURRENT,
    );
    expect(js).toMatchObject({
      guided_decoding_guide_type: 'json_schema',
      guided_decoding_guide: JSON.stringify(schema),
    });
    expect(toTritonRequest({ ...req, responseFormat: { type: 'text' } }, CURRENT)).toEqual(
      toTritonRequest(req, CURRENT),
    );
  });

  it('checkRequest refuses, naming the field and triton, every field whose input is not declared', () => {
    const refused = (r: Partial<GenerateRequest>, support = CURRENT_SUPPORT) =>
      failure(() => checkSupport('triton', { ...req, ...r }, support));
    // No stock ensemble declares min_p.
    expect(refused({ sampling: { minP: 0.1 } }).message).toMatch(/^min_p: .*'triton'/);
    const oldest = tritonSupport(OLDEST, { guidedDecoding: true, chat: true });
    expect(refused({ sampling: { frequencyPenalty: 0.5 } }, oldest).message).toMatch(
      /^frequency_penalty: .*'triton'/,
    );
    expect(refused({ stop: ['x'] }, oldest).message).toMatch(/^stop: .*'triton'.*'stop_words'/);
    const legacy = tritonSupport(LEGACY, { guidedDecoding: true, chat: true });
    expect(refused({ responseFormat: { type: 'json_object' } }, legacy).message).toMatch(
      /^response_format: .*'triton'.*guided_decoding_guide_type/,
    );
    // Declared, but the tensorrt_llm model has no guided decoder configured.
    const unconfigured = tritonSupport(CURRENT, { guidedDecoding: false, chat: true });
    expect(refused({ responseFormat: { type: 'json_object' } }, unconfigured).message).toMatch(
      /guided_decoding_backend/,
    );
    expect(
      refused(
        { messages: [{ role: 'user', content: 'hi' }] },
        tritonSupport(CURRENT, { guidedDecoding: true, chat: 'no tokenizer_dir' }),
      ).message,
    ).toMatch(/^messages: .*'triton'.*no tokenizer_dir/);
    const tool = { type: 'function' as const, function: { name: 'f' } };
    expect(refused({ tools: [tool] }).message).toMatch(/^tools: .*'triton'.*tool-call parser/);
    // What is declared passes.
    expect(() =>
      checkSupport(
        'triton',
        {
          ...req,
          sampling: {
            temperature: 0,
            topK: 1,
            topP: 1,
            repeatPenalty: 1,
            presencePenalty: 0,
            frequencyPenalty: 0,
          },
          stop: ['x'],
          responseFormat: { type: 'json_object' },
        },
        CURRENT_SUPPORT,
      ),
    ).not.toThrow();
  });

  it('the mapping refuses the same undeclared inputs on its own (before any request)', () => {
    expect(failure(() => toTritonRequest({ ...req, sampling: { minP: 0.1 } }, CURRENT)).message).toMatch(
      /^min_p: ensemble 'ensemble' declares no input 'min_p'/,
    );
    expect(failure(() => toTritonRequest({ ...req, stop: ['x'] }, OLDEST)).message).toMatch(/^stop: /);
    expect(
      failure(() => toTritonRequest({ ...req, responseFormat: { type: 'json_object' } }, LEGACY)).message,
    ).toMatch(/^response_format: /);
  });

  it('guideOf: json_object → json; json_schema → json_schema with the schema text', () => {
    expect(guideOf(req)).toBeUndefined();
    expect(guideOf({ ...req, responseFormat: { type: 'json_object' } })).toEqual({ type: 'json' });
    expect(guideOf({ ...req, responseFormat: { type: 'json_schema', json_schema: {} } })).toEqual({
      type: 'json',
    });
  });
});

describe('stop strings in the stream', () => {
  it('the text ends before the stop word, even when it arrives over several responses; stop reason stop', () => {
    const p = new TritonStreamParser([' is a']);
    const evs = parse(fixture('generate-stream-stop.sse'), p);
    expect(p.stopped).toBe(true);
    const done = p.finish(6, 16);
    expect([...tokens(evs), ...tokens(done)].map((t) => t.text).join('')).toBe(' Machine learning');
    expect(done.at(-1)).toMatchObject({ kind: 'done', tokensOut: 4, stopReason: 'stop' });
  });

  it('text held back as a possible stop prefix is released when the stream ends without one', () => {
    const p = new TritonStreamParser([' is x']);
    const evs = parse(fixture('generate-stream-stop.sse'), p);
    const done = p.finish(6, 16);
    expect([...tokens(evs), ...tokens(done)].map((t) => t.text).join('')).toBe(' Machine learning is a');
    expect(done.at(-1)).toMatchObject({ stopReason: 'eos' });
    const q = new TritonStreamParser([' a']);
    const held = parse(fixture('generate-stream-stop.sse'), q);
    expect(tokens(held).map((t) => t.text)).toEqual([' Machine', ' learning', ' is', '']);
    expect(q.finish(6, 4).at(-1)).toMatchObject({ stopReason: 'stop' });
  });
});
