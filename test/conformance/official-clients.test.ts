/**
 * The simulator's dialects checked with the engines' own official client libraries, so the
 * simulator cannot drift into a private dialect: OpenAI's `openai` client against the vLLM
 * dialect, Hugging Face's `@huggingface/inference` against the TGI dialect.
 */
import { InferenceClient } from '@huggingface/inference';
import * as hfV2 from '@huggingface/inference-v2';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type EngineUnderTest } from '../support/engine-under-test.js';
import { simPool, until } from '../support/harness.js';

/** The 2.x client's surface used here (its bundled types do not resolve under `nodenext`). */
interface TgiNativeClient {
  textGenerationStream(args: {
    model: string;
    inputs: string;
    parameters: Record<string, unknown>;
  }): AsyncIterable<{ token: { text: string }; generated_text: string | null; details: unknown }>;
  textGeneration(args: {
    model: string;
    inputs: string;
    parameters: Record<string, unknown>;
  }): Promise<{ generated_text: string }>;
}
const { HfInferenceEndpoint } = hfV2 as unknown as {
  HfInferenceEndpoint: new (url: string) => TgiNativeClient;
};

const API_KEY = 'sk-sim-test';
let vllm: EngineUnderTest;
/** A pooling model (`--task embed`): vLLM serves embeddings only from such a model. */
let vllmEmbed: EngineUnderTest;
let tgi: EngineUnderTest;

async function ready(e: EngineUnderTest): Promise<void> {
  await until(async () => (await e.adapter.probe(AbortSignal.timeout(2_000))).ready, 90_000);
}

beforeAll(async () => {
  [vllm, vllmEmbed, tgi] = await Promise.all([
    startEngine(simPool('oc-vllm', 'vllm', { launch: { worker: 'sim', parallel: 2, api_key: API_KEY } })),
    startEngine(
      simPool('oc-embed', 'vllm', {
        launch: { worker: 'sim', parallel: 2, api_key: API_KEY, extra_args: ['--task', 'embed'] },
      }),
    ),
    startEngine(simPool('oc-tgi', 'tgi')),
  ]);
  await Promise.all([ready(vllm), ready(vllmEmbed), ready(tgi)]);
});
afterAll(async () => {
  await Promise.all([vllm.stop(), vllmEmbed.stop(), tgi.stop()]);
});

describe('openai client ↔ simulated vLLM', () => {
  const client = () => new OpenAI({ apiKey: API_KEY, baseURL: `${vllm.baseUrl}/v1`, maxRetries: 0 });

  it('lists the served model with its max_model_len', async () => {
    const models = await client().models.list();
    expect(models.data.map((m) => m.id)).toEqual(['oc-vllm']);
  });

  it('streams a completion ending with a usage chunk', async () => {
    const stream = await client().completions.create({
      model: 'oc-vllm',
      prompt: 'Hello',
      max_tokens: 7,
      seed: 3,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined;
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    expect(text).toHaveLength(7);
    expect(finish).toBe('length');
    expect(usage).toMatchObject({ completion_tokens: 7, total_tokens: (usage?.prompt_tokens ?? 0) + 7 });
  });

  it('streams a chat completion (role first, then content deltas)', async () => {
    const stream = await client().chat.completions.create({
      model: 'oc-vllm',
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 5,
      stream: true,
    });
    const deltas: OpenAI.Chat.Completions.ChatCompletionChunk.Choice.Delta[] = [];
    for await (const chunk of stream) if (chunk.choices[0]) deltas.push(chunk.choices[0].delta);
    expect(deltas[0]?.role).toBe('assistant');
    expect(deltas.map((d) => d.content ?? '').join('')).toHaveLength(5);
  });

  it('creates embeddings on a pooling model', async () => {
    const embedder = new OpenAI({ apiKey: API_KEY, baseURL: `${vllmEmbed.baseUrl}/v1`, maxRetries: 0 });
    const r = await embedder.embeddings.create({ model: 'oc-embed', input: ['a', 'b'] });
    expect(r.data).toHaveLength(2);
    expect(r.data[0]?.embedding.length).toBeGreaterThan(0);
  });

  it('a stop string ends the completion: not in the text, finish_reason "stop"', async () => {
    const plain = await client().completions.create({
      model: 'oc-vllm',
      prompt: 'Hi',
      max_tokens: 30,
      seed: 9,
    });
    const whole = plain.choices[0]?.text ?? '';
    const stop = whole.slice(8, 10);
    const stopped = await client().completions.create({
      model: 'oc-vllm',
      prompt: 'Hi',
      max_tokens: 30,
      seed: 9,
      stop: [stop],
    });
    expect(stopped.choices[0]?.text).toBe(whole.slice(0, whole.indexOf(stop)));
    expect(stopped.choices[0]?.finish_reason).toBe('stop');
  });

  it('surfaces errors as the client expects: 400 for ctx overflow, 401 without the key', async () => {
    await expect(
      client().completions.create({ model: 'oc-vllm', prompt: 'x', max_tokens: 100_000 }),
    ).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    const anon = new OpenAI({ apiKey: 'wrong', baseURL: `${vllm.baseUrl}/v1`, maxRetries: 0 });
    await expect(anon.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });
});

describe('@huggingface/inference 2.x (TGI native API) ↔ simulated TGI', () => {
  // 2.x posts to the endpoint root, TGI's compat route, and reads TGI's own stream events. A
  // model name keeps it from asking huggingface.co for a default model (offline here).
  const endpoint = () => new HfInferenceEndpoint(tgi.baseUrl);
  const model = 'tgi';

  it('textGenerationStream: one token per event, details on the last', async () => {
    const tokens: string[] = [];
    let generated: string | null = null;
    let details: unknown;
    for await (const ev of endpoint().textGenerationStream({
      model,
      inputs: 'Hello',
      parameters: { max_new_tokens: 6, seed: 1, details: true },
    })) {
      tokens.push(ev.token.text);
      generated = ev.generated_text ?? generated;
      details = ev.details ?? details;
    }
    expect(tokens).toHaveLength(6);
    expect(generated).toBe(tokens.join(''));
    expect(details).toMatchObject({ finish_reason: 'length', generated_tokens: 6 });
  });

  it('a stop sequence ends it with finish_reason stop_sequence, the sequence kept', async () => {
    let whole = '';
    for await (const ev of endpoint().textGenerationStream({
      model,
      inputs: 'Hi',
      parameters: { max_new_tokens: 30, seed: 9 },
    }))
      whole += ev.token.text;
    const stop = whole.slice(8, 10);
    let details: unknown;
    let generated: string | null = null;
    for await (const ev of endpoint().textGenerationStream({
      model,
      inputs: 'Hi',
      parameters: { max_new_tokens: 30, seed: 9, stop: [stop], details: true },
    })) {
      details = ev.details ?? details;
      generated = ev.generated_text ?? generated;
    }
    expect(details).toMatchObject({ finish_reason: 'stop_sequence' });
    expect(generated).toBe(whole.slice(0, whole.indexOf(stop) + stop.length));
  });

  it('textGeneration returns the generated text', async () => {
    const r = await endpoint().textGeneration({ model, inputs: 'Hello', parameters: { max_new_tokens: 4 } });
    expect(r.generated_text).toHaveLength(4);
  });

  it("validation errors arrive as the client's error with TGI's message", async () => {
    await expect(
      endpoint().textGeneration({ model, inputs: 'x', parameters: { max_new_tokens: 100_000 } }),
    ).rejects.toThrow(/max_new_tokens/);
  });
});

describe('@huggingface/inference 4.x (TGI Messages API) ↔ simulated TGI', () => {
  // Current clients reach a TGI endpoint through its OpenAI-compatible routes.
  const endpoint = () => new InferenceClient().endpoint(tgi.baseUrl);

  it('textGeneration through /v1/completions', async () => {
    const r = await endpoint().textGeneration({ inputs: 'Hello', parameters: { max_new_tokens: 4 } });
    expect(r.generated_text).toHaveLength(4);
  });

  it('chatCompletionStream through /v1/chat/completions', async () => {
    let text = '';
    for await (const chunk of endpoint().chatCompletionStream({
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 5,
    })) {
      text += chunk.choices[0]?.delta.content ?? '';
    }
    expect(text).toHaveLength(5);
  });
});
