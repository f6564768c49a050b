/**
 * llama.cpp adapter against the wire formats of the pinned llama-server and of older builds
 * (test/fixtures/llamacpp/README.md): prompt tokens with a warm prompt cache, stop reasons of
 * both generations of the final frame, both mid-stream error framings (fixtures, and over HTTP
 * from the simulator), embeddings and what the launch flags decide.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../src/engines/adapter.js';
import { validateConfig } from '../../src/config/load-config.js';
import { ConfigError } from '../../src/config/config-error.js';
import type { RawPool } from '../../src/config/schema.js';
import { LlamaCppAdapter } from '../../src/engines/llamacpp/adapter.js';
import { llamaServerArgs } from '../../src/engines/llamacpp/launch-args.js';
import { simArgs } from '../../src/pool/engine-launcher.js';
import { launchFlags } from '../../src/engines/llamacpp/launch-flags.js';
import { mapStreamError } from '../../src/engines/llamacpp/map-error.js';
import { CompletionStreamParser } from '../../src/engines/llamacpp/parse-stream.js';
import { OrchError } from '../../src/errors/orch-error.js';
import type { LlamacppSimOptions } from '../../src/sim/dialects/llamacpp.js';
import { SIM_DEFAULTS, SimEngine, type SimFaults } from '../../src/sim/sim-engine.js';
import { startSimServer, type RunningSim } from '../../src/sim/sim-server.js';
import { SseParser } from '../../src/util/sse-parser.js';
import { fixture } from '../sim/sim-fixture-shape.js';

/** Feeds a transcript through the parser the way the adapter does (with the `error` field kept). */
function replay(name: string): EngineEvent[] {
  const parser = new CompletionStreamParser();
  const sse = new SseParser({ fieldEvents: ['error'] });
  const out: EngineEvent[] = [];
  for (const rec of [...sse.push(fixture('llamacpp', name)), ...sse.push('\n\n')]) {
    if (rec.event === 'error') parser.pushErrorField(rec.data);
    out.push(...parser.push(rec.data));
  }
  return out;
}

function thrown(f: () => unknown): OrchError {
  try {
    f();
  } catch (err) {
    if (err instanceof OrchError) return err;
    throw err;
  }
  throw new Error('expected an OrchError');
}

const done = (events: readonly EngineEvent[]) => events.find((e) => e.kind === 'done');
const text = (events: readonly EngineEvent[]) =>
  events.map((e) => (e.kind === 'tokens' ? e.text : '')).join('');

describe('llama-server streams (recorded from the pinned build)', () => {
  it('warm prompt cache: tokens in are the whole prompt (tokens_evaluated), the uncached part apart', () => {
    // 18 prompt tokens; 17 came from the cache, so timings.prompt_n is 1.
    expect(done(replay('completion-stream-warm.sse'))).toMatchObject({
      tokensIn: 18,
      tokensInUncached: 1,
      tokensOut: 4,
    });
  });

  it('end of sequence: the EOS token is counted, stop reason eos', () => {
    const events = replay('completion-stream-eos.sse');
    expect(done(events)).toMatchObject({ stopReason: 'eos', tokensOut: 1 });
    expect(events[0]).toEqual({ kind: 'tokens', count: 1, ids: [2], text: '' });
  });

  it('a stop string: stop reason stop, the string never reaches the text', () => {
    const events = replay('completion-stream-stop-word.sse');
    expect(done(events)).toMatchObject({ stopReason: 'stop', tokensOut: 9 });
    expect(text(events)).not.toContain('&');
  });

  it('builds before stop_type: the stopped_* flags give the stop reason', () => {
    const final = (flags: string) =>
      done(
        new CompletionStreamParser().push(
          `{"content":"","stop":true,${flags},"tokens_predicted":2,"tokens_evaluated":5,"timings":{"prompt_n":5}}`,
        ),
      );
    expect(final('"stopped_eos":true,"stopped_word":false,"stopped_limit":false')).toMatchObject({
      stopReason: 'eos',
    });
    expect(final('"stopped_eos":false,"stopped_word":true,"stopped_limit":false')).toMatchObject({
      stopReason: 'stop',
    });
    expect(final('"stopped_eos":false,"stopped_word":false,"stopped_limit":true')).toMatchObject({
      stopReason: 'length',
      tokensIn: 5,
    });
  });

  it('pinned framing: a mid-stream `data: {"error": …}` frame is a typed error with its message', () => {
    const err = thrown(() => replay('completion-stream-error.sse'));
    // The KV cache ran full mid-decode: the server failed and cleared the request; retry elsewhere.
    expect(err).toMatchObject({ code: 'WORKER_RESET', engine: 'llamacpp' });
    expect(err.message).toContain('Context size has been exceeded.');
  });

  it('older framing: an `error: {…}` SSE field is a typed error with its message', () => {
    const err = thrown(() => replay('completion-stream-error-field.sse'));
    expect(err).toMatchObject({ code: 'WORKER_RESET', engine: 'llamacpp' });
    expect(err.message).toContain('too big compared to KV size');
  });

  it('error types map to spec codes, whatever the framing', () => {
    expect(mapStreamError({ code: 400, message: 'x', type: 'exceed_context_size_error' }).code).toBe(
      'INVALID_PARAMS',
    );
    expect(mapStreamError({ code: 503, message: 'x', type: 'unavailable_error' }).code).toBe('POOL_UNREADY');
    expect(mapStreamError({ code: 500, message: 'Compute error.', type: 'server_error' }).code).toBe(
      'INTERNAL',
    );
    expect(mapStreamError('CUDA out of memory').code).toBe('WORKER_RESET');
  });
});

describe('what the command line decides', () => {
  it('continuous batching and a unified KV cache: the last flag wins, llama.cpp defaults otherwise', () => {
    expect(launchFlags([])).toEqual({ continuousBatching: true, kvUnified: false, jinja: true });
    expect(launchFlags(['--no-jinja'])).toMatchObject({ jinja: false });
    expect(launchFlags(['--no-jinja', '--jinja'])).toMatchObject({ jinja: true });
    expect(launchFlags(['--no-cont-batching'])).toMatchObject({ continuousBatching: false });
    expect(launchFlags(['--no-cont-batching', '-cb'])).toMatchObject({ continuousBatching: true });
    expect(launchFlags(['-kvu'])).toMatchObject({ kvUnified: true });
    expect(launchFlags(['--kv-unified', '--no-kv-unified'])).toMatchObject({ kvUnified: false });
  });
});

describe('launch.embeddings', () => {
  const pool = (engine: RawPool['engine'], launch: RawPool['launch']) => {
    const { config } = validateConfig({
      profile: 'dev',
      pools: [{ id: 'p', engine, model: { id: 'm', path: '/m.gguf' }, ctx: 512, devices: 'cpu', launch }],
    });
    const p = config.pools[0];
    if (p === undefined) throw new Error('no pool');
    return p;
  };

  it('starts llama-server, and the simulator in its dialect, with --embeddings and --pooling', () => {
    const plain = pool('llamacpp', {});
    expect(llamaServerArgs(plain, 1)).not.toContain('--embeddings');
    const modelPooling = pool('llamacpp', { embeddings: true });
    expect(llamaServerArgs(modelPooling, 1)).toContain('--embeddings');
    expect(llamaServerArgs(modelPooling, 1)).not.toContain('--pooling');
    const mean = pool('llamacpp', { embeddings: { pooling: 'mean' } });
    expect(llamaServerArgs(mean, 1).join(' ')).toContain('--embeddings --pooling mean');
    const sim = pool('llamacpp', { worker: 'sim', embeddings: { pooling: 'mean' } });
    expect(simArgs(sim, 0, [1]).join(' ')).toContain('--embeddings --pooling mean');
  });

  it('is a config error naming the field on engines that cannot honour it', () => {
    expect(() => pool('tgi', { embeddings: true })).toThrow(ConfigError);
    expect(() => pool('tgi', { embeddings: true })).toThrow(/launch\.embeddings/);
  });
});

describe('LlamaCppAdapter over HTTP (simulated llama-server)', () => {
  const running: RunningSim[] = [];
  const adapters: LlamaCppAdapter[] = [];
  afterEach(async () => {
    await Promise.all(adapters.splice(0).map((a) => a.close()));
    await Promise.all(running.splice(0).map((s) => s.close()));
  });

  async function serve(
    o: LlamacppSimOptions = {},
    faults: SimFaults = {},
    adapterOpts: Partial<ConstructorParameters<typeof LlamaCppAdapter>[0]> = {},
  ) {
    const e = new SimEngine({
      ...SIM_DEFAULTS,
      modelId: 'm',
      engineVersion: 'b1-sim',
      tokensPerSecond: 5_000,
    });
    e.faults = faults;
    const sim = await startSimServer({
      dialect: 'llamacpp',
      engine: e,
      host: '127.0.0.1',
      port: 0,
      llamacpp: o,
    });
    running.push(sim);
    const adapter = new LlamaCppAdapter({ baseUrl: `http://127.0.0.1:${sim.port}`, ...adapterOpts });
    adapters.push(adapter);
    return adapter;
  }

  const generate = async (a: LlamaCppAdapter) => {
    const events: EngineEvent[] = [];
    for await (const ev of a.generate(
      {
        prompt: 'p',
        maxTokens: 16,
        seed: 1,
        determinism: 'strict',
        samplerProfileVersion: 'v1',
        cachePrompt: false,
        ignoreEos: true,
      },
      AbortSignal.timeout(20_000),
    ))
      events.push(ev);
    return events;
  };
  const failure = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (err) {
      if (err instanceof OrchError) return err;
      throw err;
    }
    throw new Error('expected a failure');
  };

  it.each([
    ['data: {"error": …} (pinned)', false],
    ['error: {…} field (older builds)', true],
  ])('a mid-stream error framed as %s ends the stream with the engine’s error', async (_name, field) => {
    const a = await serve({ streamErrorField: field }, { oomAfterTokens: 3 });
    const err = await failure(generate(a));
    expect(err).toMatchObject({ code: 'WORKER_RESET', engine: 'llamacpp' });
    // The engine's own message, not "stream closed before its final frame".
    expect(err.message).toContain('CUDA out of memory');
  });

  it('embeddings are detected on the engine, and served over /v1/embeddings', async () => {
    const off = await serve();
    expect((await off.properties(AbortSignal.timeout(5_000))).features.embeddings).toBe(false);
    const noPooling = await serve({ embeddings: true });
    expect((await noPooling.properties(AbortSignal.timeout(5_000))).features.embeddings).toBe(false);
    const on = await serve({ embeddings: true, pooling: 'mean' });
    expect((await on.properties(AbortSignal.timeout(5_000))).features.embeddings).toBe(true);
    const r = await on.embed(['a', 'b', 'a'], AbortSignal.timeout(5_000));
    expect(r.vectors).toHaveLength(3);
    expect(r.vectors[0]).toEqual(r.vectors[2]);
    expect(r.vectors[0]).not.toEqual(r.vectors[1]);
    expect(r.tokensIn).toBeGreaterThan(0);
    // A server without embeddings refuses with its own message.
    expect((await failure(off.embed(['a'], AbortSignal.timeout(5_000)))).message).toContain('--embeddings');
  });

  it('continuous batching is reported as the command line decided it', async () => {
    const on = await serve({}, {}, { continuousBatching: true });
    const off = await serve({}, {}, { continuousBatching: false });
    expect((await on.properties(AbortSignal.timeout(5_000))).features.continuousBatching).toBe(true);
    expect((await off.properties(AbortSignal.timeout(5_000))).features.continuousBatching).toBe(false);
  });

  it('KV usage from /slots: the tokens the slots hold over their cells', async () => {
    const a = await serve();
    expect(await a.kvUsage(AbortSignal.timeout(5_000))).toBe(0);
    await generate(a);
    const slots = (await (await fetch(`${a.baseUrl}/slots`)).json()) as {
      n_ctx: number;
      n_prompt_tokens?: number;
    }[];
    const held = slots.reduce((n, s) => n + (s.n_prompt_tokens ?? 0), 0);
    expect(held).toBeGreaterThan(0);
    const cells = slots.reduce((n, s) => n + s.n_ctx, 0);
    expect(await a.kvUsage(AbortSignal.timeout(5_000))).toBeCloseTo(held / cells, 10);
  });
});
