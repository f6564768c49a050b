/**
 * `llorch sim`: one simulated engine process. Prints one JSON line with its ports on stdout once
 * listening (supervisors and scripts read it), then serves until SIGTERM/SIGINT.
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { SIM_DEFAULTS, SimEngine, type SimFaults } from './sim-engine.js';
import { SIM_DIALECTS, startSimServer, type SimDialect } from './sim-server.js';
import { SIM_KEY_ENV } from './engine-auth.js';
import type { LlamacppSimOptions } from './dialects/llamacpp.js';
import { TRITON_SIM_FLAGS, TRITON_SIM_USAGE, tritonSimOptions } from './dialects/triton-options.js';

/** vLLM's default `--block-size`. */
const VLLM_BLOCK_TOKENS = 16;

export const SIM_USAGE = `usage: llorch sim --dialect llamacpp|vllm|tgi|triton [options]
  --port N               HTTP port (0: any free port; printed on stdout)    default 0
  --host H               interface to bind                                  default 127.0.0.1
  --metrics-port N       Triton only: metrics port                           default 0
${TRITON_SIM_USAGE}  --model ID             model id the engine reports                         default sim-model
  --engine-version V     version the engine reports                          default sim-1.0.0
  --slots N              concurrent sequences (continuous batching)          default ${SIM_DEFAULTS.slots}
  --ctx N                context length per sequence                         default ${SIM_DEFAULTS.ctx}
  --tokens-per-s N       decode rate of one sequence alone                   default ${SIM_DEFAULTS.tokensPerSecond}
  --batch-slowdown F     per-neighbour decode slowdown (0.1 = 10 %)          default ${SIM_DEFAULTS.batchSlowdown}
  --prefill-tokens-per-s N  prefill rate of uncached prompt tokens           default ${SIM_DEFAULTS.prefillTokensPerSecond}
  --kv-tokens N          KV cache capacity in tokens                         default ${SIM_DEFAULTS.kvCapacityTokens}
  --load-ms N            load for N ms after start: llamacpp and triton answer "loading"
                         (503) meanwhile, vllm and tgi refuse connections until loaded  default 0
  --eos-probability P    chance of end-of-sequence at each token (seeded)    default 0
  --task generate|embed  vllm: the task the model serves (vLLM's --task; also --runner
                         generate|pooling)                                   default generate
  --no-enable-prefix-caching  vllm: prefix caching off (vLLM's flag; on by default)
  --enable-auto-tool-choice, --tool-call-parser NAME  vllm: tool calling (vLLM's flags)
  --embeddings           llamacpp: serve /embedding and /v1/embeddings (llama-server's flag)
  --pooling none|mean|cls|last  llamacpp: pooling of embeddings     default none (the model's)
  --stream-error-field   llamacpp: mid-stream errors as an \`error:\` SSE field (older builds)
  --api-key KEY          require this key where the engine would (llamacpp, vllm, tgi; default:
                         $LLAMA_API_KEY, $VLLM_API_KEY, $API_KEY, as the real engines read it)
  --model-file PATH      a model artifact to "load": a missing file fails the start (exit 1)
faults (also settable at runtime: POST /__sim/faults {"crash":1,"hang":true,"slow_token_ms":50,
"loading_ms":3000,"oom_after_tokens":5,"refuse":true}; {} clears):
  --fault-crash CODE  --fault-hang  --fault-slow-token-ms N  --fault-loading-ms N
  --fault-oom-after-tokens N  --fault-refuse
  --fault-crash-file PATH   while PATH exists, exit (code 3) 150 ms after every start: a crash loop
  --fault-crash-message TEXT  printed on stderr before such an exit (e.g. a CUDA error line)
`;

const number = (name: string, v: string | undefined, dflt: number): number => {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got '${v}'`);
  return n;
};

/**
 * The task a vLLM model serves, from vLLM's own flags: `--task generate|embed|embedding`
 * (vLLM 0.6 to 0.10) or `--runner generate|pooling` (later versions). Other dialects take none.
 */
function servedTask(
  dialect: string,
  task: string | undefined,
  runner: string | undefined,
): 'generate' | 'embed' {
  if ((task !== undefined || runner !== undefined) && dialect !== 'vllm')
    throw new Error('--task/--runner: only the vllm dialect serves a chosen task');
  if (task !== undefined && runner !== undefined) throw new Error('--task and --runner exclude each other');
  if (runner !== undefined && runner !== 'generate' && runner !== 'pooling')
    throw new Error(`--runner must be generate or pooling, got '${runner}'`);
  if (task === undefined || task === 'generate') return runner === 'pooling' ? 'embed' : 'generate';
  if (task === 'embed' || task === 'embedding') return 'embed';
  throw new Error(`--task must be generate or embed, got '${task}'`);
}

/** llama-server's own flags the llamacpp dialect takes; other dialects take none of them. */
function llamacppOptions(
  dialect: string,
  v: {
    embeddings?: boolean | undefined;
    pooling?: string | undefined;
    'stream-error-field'?: boolean | undefined;
  },
): LlamacppSimOptions | undefined {
  const given =
    v.embeddings !== undefined || v.pooling !== undefined || v['stream-error-field'] !== undefined;
  if (!given) return undefined;
  if (dialect !== 'llamacpp')
    throw new Error('--embeddings/--pooling/--stream-error-field: only the llamacpp dialect takes them');
  const pooling = v.pooling;
  if (
    pooling !== undefined &&
    pooling !== 'none' &&
    pooling !== 'mean' &&
    pooling !== 'cls' &&
    pooling !== 'last'
  )
    throw new Error(`--pooling must be none, mean, cls or last, got '${pooling}'`);
  return { embeddings: v.embeddings === true, pooling, streamErrorField: v['stream-error-field'] === true };
}

export async function simCommand(argv: readonly string[]): Promise<void> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      dialect: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'metrics-port': { type: 'string' },
      ...TRITON_SIM_FLAGS,
      model: { type: 'string' },
      'engine-version': { type: 'string' },
      slots: { type: 'string' },
      ctx: { type: 'string' },
      'tokens-per-s': { type: 'string' },
      'batch-slowdown': { type: 'string' },
      'prefill-tokens-per-s': { type: 'string' },
      'kv-tokens': { type: 'string' },
      'load-ms': { type: 'string' },
      'eos-probability': { type: 'string' },
      task: { type: 'string' },
      runner: { type: 'string' },
      'enable-prefix-caching': { type: 'boolean' },
      'no-enable-prefix-caching': { type: 'boolean' },
      'enable-auto-tool-choice': { type: 'boolean' },
      'tool-call-parser': { type: 'string' },
      embeddings: { type: 'boolean' },
      pooling: { type: 'string' },
      'stream-error-field': { type: 'boolean' },
      'api-key': { type: 'string' },
      'model-file': { type: 'string' },
      'fault-crash': { type: 'string' },
      'fault-hang': { type: 'boolean' },
      'fault-slow-token-ms': { type: 'string' },
      'fault-loading-ms': { type: 'string' },
      'fault-oom-after-tokens': { type: 'string' },
      'fault-refuse': { type: 'boolean' },
      'fault-crash-file': { type: 'string' },
      'fault-crash-message': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write(SIM_USAGE);
    return;
  }
  const dialect = values.dialect;
  if (dialect === undefined || !(SIM_DIALECTS as readonly string[]).includes(dialect))
    throw new Error(`--dialect must be one of ${SIM_DIALECTS.join(', ')}\n${SIM_USAGE}`);
  const keyEnv = SIM_KEY_ENV[dialect as SimDialect];
  const envKey = keyEnv === undefined ? undefined : process.env[keyEnv];
  const apiKey = values['api-key'] ?? (envKey === '' ? undefined : envKey);
  if (apiKey !== undefined && keyEnv === undefined)
    throw new Error(`--api-key: the ${dialect} dialect has no API key (the real engine takes none)`);
  const task = servedTask(dialect, values.task, values.runner);
  const eosProbability = number('eos-probability', values['eos-probability'], 0);
  if (eosProbability > 1) throw new Error(`--eos-probability must be at most 1, got ${eosProbability}`);
  const modelFile = values['model-file'];
  if (modelFile !== undefined && !existsSync(modelFile)) {
    process.stderr.write(`error: failed to load model '${modelFile}': no such file\n`);
    process.exit(1);
  }
  const engine = new SimEngine({
    modelId: values.model ?? 'sim-model',
    engineVersion: values['engine-version'] ?? 'sim-1.0.0',
    slots: Math.max(1, number('slots', values.slots, SIM_DEFAULTS.slots)),
    ctx: number('ctx', values.ctx, SIM_DEFAULTS.ctx),
    tokensPerSecond: number('tokens-per-s', values['tokens-per-s'], SIM_DEFAULTS.tokensPerSecond),
    batchSlowdown: number('batch-slowdown', values['batch-slowdown'], SIM_DEFAULTS.batchSlowdown),
    prefillTokensPerSecond: number(
      'prefill-tokens-per-s',
      values['prefill-tokens-per-s'],
      SIM_DEFAULTS.prefillTokensPerSecond,
    ),
    kvCapacityTokens: number('kv-tokens', values['kv-tokens'], SIM_DEFAULTS.kvCapacityTokens),
    loadMs: number('load-ms', values['load-ms'], SIM_DEFAULTS.loadMs),
    embeddingDim: SIM_DEFAULTS.embeddingDim,
    eosProbability,
    servedTask: task,
    // vLLM's paged KV cache shares a prefix's blocks among the prompts that share it (block size 16).
    kvBlockTokens: dialect === 'vllm' ? VLLM_BLOCK_TOKENS : undefined,
    prefixCaching:
      values['no-enable-prefix-caching'] === true
        ? false
        : values['enable-prefix-caching'] === true
          ? true
          : undefined,
    toolCalling:
      values['enable-auto-tool-choice'] === true || values['tool-call-parser'] !== undefined
        ? { autoToolChoice: values['enable-auto-tool-choice'] === true, parser: values['tool-call-parser'] }
        : undefined,
  });
  const faults: SimFaults = {};
  if (values['fault-crash'] !== undefined) faults.crash = number('fault-crash', values['fault-crash'], 1);
  if (values['fault-hang'] === true) faults.hang = true;
  if (values['fault-slow-token-ms'] !== undefined)
    faults.slowTokenMs = number('fault-slow-token-ms', values['fault-slow-token-ms'], 0);
  if (values['fault-loading-ms'] !== undefined)
    faults.loadingUntilMs = Date.now() + number('fault-loading-ms', values['fault-loading-ms'], 0);
  if (values['fault-oom-after-tokens'] !== undefined)
    faults.oomAfterTokens = number('fault-oom-after-tokens', values['fault-oom-after-tokens'], 0);
  if (values['fault-refuse'] === true) faults.refuse = true;
  engine.faults = faults;
  const sim = await startSimServer({
    dialect: dialect as SimDialect,
    engine,
    host: values.host ?? '127.0.0.1',
    port: number('port', values.port, 0),
    metricsPort:
      values['metrics-port'] === undefined ? undefined : number('metrics-port', values['metrics-port'], 0),
    apiKey,
    triton: tritonSimOptions(dialect, values),
    llamacpp: llamacppOptions(dialect, values),
  });
  process.stdout.write(
    `${JSON.stringify({ event: 'sim.listening', dialect, port: sim.port, metrics_port: sim.metricsPort })}\n`,
  );
  const crashFile = values['fault-crash-file'];
  if (crashFile !== undefined && existsSync(crashFile)) {
    setTimeout(() => {
      process.stderr.write(`${values['fault-crash-message'] ?? 'fatal: simulated crash'}\n`);
      process.exit(3);
    }, 150);
  }
  const stop = () => void sim.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
