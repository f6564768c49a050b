#!/usr/bin/env node
/** `llorch`: run the orchestrator, submit tasks, validate configs. */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../config/load-config.js';
import { ConfigError } from '../config/resolve-config.js';
import type { ResolvedConfig } from '../config/resolved-config.js';
import { startOrchestrator } from '../main.js';
import { writeTinyGguf } from '../models/tiny-gguf.js';
import { createLogger } from '../util/logger.js';
import { configSecrets } from '../util/redact.js';
import { DEV_DEFAULTS, devConfig, isFullPolicy, tinyModelPath } from './dev-config.js';
import { submitCommand } from './submit.js';
import { simCommand } from '../sim/sim-main.js';
import { poolsCommand, statusCommand } from './status.js';
import { artifactsCommand } from './artifacts.js';
import { pluginsCommand } from './plugins.js';
import { catalogCommand } from './catalog.js';
import { ensureDevSigning } from './dev-signing.js';
import type { CatalogAddRequest } from '../catalog/catalog-service.js';
import { startPoolManagerd } from '../nodes/pool-managerd.js';
import { OrchHttpError } from '../client/orch-http-error.js';
import { handleShutdownSignals } from './signals.js';

function errorText(err: unknown): string {
  if (err instanceof OrchHttpError)
    return `${err.status} ${err.envelope?.code ?? ''}: ${err.envelope?.message ?? ''}`;
  return err instanceof Error ? err.message : String(err);
}
import { ENGINES, type Engine } from '../domain/types.js';

const USAGE = `usage: llorch <command> [options]

commands:
  dev                     orchestrator on the dev default (127.0.0.1:8080, CPU llama.cpp replicas)
      --port N  --host H  --replicas N  --queue-capacity N
      --api-key-file FILE | $LLORCH_API_KEY   require this API key (\`--api-key KEY\` also works,
                          but any local user can read it in \`ps\`)
      --full-policy reject|drop-lru|shed-low-priority  --model PATH  --ctx N  --data-dir DIR
      --engine llamacpp|sim   sim: simulated replicas, no real inference
      --sim-dialect llamacpp|vllm|tgi|triton  --sim-tokens-per-s N  --sim-slots N
  sim --dialect D         one simulated engine (llamacpp|vllm|tgi|triton); llorch sim --help
  serve --config FILE     orchestrator from a config file (production entry point)
  submit --prompt TEXT    enqueue a task and stream its tokens
      --url URL  --api-key KEY  --max-tokens N  --session ID  --priority interactive|batch
      --model ID  --engine E  --ctx N  --deadline-ms N  --seed N  --json
  status [--watch]        pools, replicas, slots, queues, GPUs at a glance (control key)
  pools drain|reload|health ID   pool operations: --deadline-ms N, --model REF | --rollback
  catalog add|show|verify|state|ls|keygen|sign|manifest   the model catalog and its minisign signatures
  artifacts put|get|ls    the artifact registry (--kind, --file|--content, --tag, --parent)
  plugins build DIR       compile an AssemblyScript policy plugin (--out FILE, --memory-max-bytes N)
  plugins test MODULE --snapshots FILE   run a plugin over recorded snapshots (--budget-ms N)
  plugins publish MODULE  store a module (and MODULE.minisig) in the artifact registry (--url, --api-key); prints the id
  pool-managerd --config FILE   run this host's pools for a remote orchestrator (node credential in $LLORCH_NODE_CREDENTIAL)
  config validate FILE    validate a config file against the schema
`;

function fail(message: string, code = 2): never {
  process.stderr.write(`llorch: ${message}\n`);
  process.exit(code);
}

/**
 * The key `llorch dev` requires: from a file or `$LLORCH_API_KEY` (which `llorch submit` reads
 * too), so it need not be on the command line, where every local user can read it (`ps`).
 */
async function devApiKey(flag: string | undefined, file: string | undefined): Promise<string | undefined> {
  if (flag !== undefined && file !== undefined) fail('give one of --api-key and --api-key-file');
  if (flag !== undefined) {
    process.stderr.write(
      'llorch: warning: --api-key is visible to every local user (ps); prefer --api-key-file or $LLORCH_API_KEY\n',
    );
    return flag;
  }
  if (file !== undefined) {
    const text = await readFile(file, 'utf8').catch((err: unknown) =>
      fail(`--api-key-file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`),
    );
    const key = text.trim();
    if (key === '') fail(`--api-key-file: ${file} is empty`);
    return key;
  }
  const env = process.env['LLORCH_API_KEY']?.trim();
  return env === undefined || env === '' ? undefined : env;
}

function int(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v)) fail(`--${name} must be a non-negative integer, got '${v}'`);
  return Number(v);
}

async function run(
  config: ResolvedConfig,
  warnings: readonly string[],
  bootstrapCatalog?: readonly CatalogAddRequest[],
): Promise<void> {
  const logger = createLogger({
    level: config.logging.level,
    redactPatterns: config.logging.redactPatterns,
    secrets: configSecrets(config),
  });
  for (const w of warnings) logger.warn({ event: 'config.unknown_field' }, w);
  const started = startOrchestrator(config, {
    logger,
    ...(bootstrapCatalog ? { bootstrapCatalog } : {}),
    onProgress: (line) => process.stderr.write(`llama-server build: ${line}\n`),
  });
  // Installed at once: a signal during startup is bounded as well.
  handleShutdownSignals({
    logger,
    name: 'orchestratord',
    drainMs: config.shutdown.drainMs,
    stop: async (drainMs) => (await started).close(drainMs),
  });
  const running = await started;
  await running.ready;
  const states = running.orchestrator.pools.flatMap((p) =>
    p.supervisor.replicas().map((r) => `${r.id}=${r.state.kind}`),
  );
  logger.info({ event: 'pools.started', replicas: states }, `ready: ${states.join(' ')} on ${running.url}`);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'dev': {
      const { values } = parseArgs({
        args: rest,
        options: {
          port: { type: 'string' },
          host: { type: 'string' },
          replicas: { type: 'string' },
          'api-key': { type: 'string' },
          'api-key-file': { type: 'string' },
          'queue-capacity': { type: 'string' },
          'full-policy': { type: 'string' },
          model: { type: 'string' },
          'data-dir': { type: 'string' },
          engine: { type: 'string' },
          'sim-dialect': { type: 'string' },
          'sim-tokens-per-s': { type: 'string' },
          'sim-slots': { type: 'string' },
          ctx: { type: 'string' },
        },
      });
      const engineArg = values.engine ?? DEV_DEFAULTS.engine;
      if (engineArg !== 'llamacpp' && engineArg !== 'sim') fail('--engine must be llamacpp or sim');
      const engine: 'llamacpp' | 'sim' = engineArg;
      const dialect = values['sim-dialect'] ?? DEV_DEFAULTS.simDialect;
      if (!(ENGINES as readonly string[]).includes(dialect))
        fail(`--sim-dialect must be one of ${ENGINES.join(', ')}`);
      const policy = values['full-policy'] ?? DEV_DEFAULTS.fullPolicy;
      if (!isFullPolicy(policy)) fail(`--full-policy must be reject, drop-lru or shed-low-priority`);
      const opts = {
        ...DEV_DEFAULTS,
        port: int('port', values.port, DEV_DEFAULTS.port),
        host: values.host ?? DEV_DEFAULTS.host,
        replicas: int('replicas', values.replicas, DEV_DEFAULTS.replicas),
        apiKey: await devApiKey(values['api-key'], values['api-key-file']),
        queueCapacity: int('queue-capacity', values['queue-capacity'], DEV_DEFAULTS.queueCapacity),
        fullPolicy: policy,
        modelPath: values.model,
        ctx: Math.max(64, int('ctx', values.ctx, DEV_DEFAULTS.ctx)),
        dataDir: values['data-dir'] ?? DEV_DEFAULTS.dataDir,
        engine: engine,
        simDialect: dialect as Engine,
        simTokensPerSecond: int(
          'sim-tokens-per-s',
          values['sim-tokens-per-s'],
          DEV_DEFAULTS.simTokensPerSecond,
        ),
        simSlots: Math.max(1, int('sim-slots', values['sim-slots'], DEV_DEFAULTS.simSlots)),
      };
      const generated = opts.modelPath === undefined && engine === 'llamacpp';
      if (generated) await writeTinyGguf(tinyModelPath(opts.dataDir), { ctx: opts.ctx });
      // The generated model is signed with the local dev key and registered in the catalog.
      await ensureDevSigning(opts.dataDir, generated ? tinyModelPath(opts.dataDir) : undefined);
      const { config, warnings } = devConfig(opts);
      // The configuration holds only its hash; its plaintext is known here, so it is scrubbed as such.
      if (opts.apiKey !== undefined) configSecrets(config).addLiteral(opts.apiKey);
      return run(
        config,
        warnings,
        generated ? [{ id: 'tiny', source: tinyModelPath(opts.dataDir) }] : undefined,
      );
    }
    case 'serve': {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' } } });
      if (values.config === undefined) fail('serve needs --config FILE');
      const { config, warnings } = await loadConfigFile(values.config);
      return run(config, warnings);
    }
    case 'submit':
      return submitCommand(rest);
    case 'status':
      return statusCommand(rest).catch((err: unknown) => fail(errorText(err), 1));
    case 'catalog':
      return catalogCommand(rest).catch((err: unknown) => fail(errorText(err), 1));
    case 'artifacts':
      return artifactsCommand(rest).catch((err: unknown) => fail(errorText(err), 1));
    case 'plugins':
      return pluginsCommand(rest).catch((err: unknown) => fail(errorText(err), 1));
    case 'pools':
      return poolsCommand(rest).catch((err: unknown) => fail(errorText(err), 1));
    case 'pool-managerd': {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' } } });
      if (values.config === undefined) fail('pool-managerd needs --config FILE');
      const { config } = await loadConfigFile(values.config);
      const logger = createLogger({
        level: config.logging.level,
        redactPatterns: config.logging.redactPatterns,
        secrets: configSecrets(config),
      });
      const starting = startPoolManagerd(config, logger);
      handleShutdownSignals({
        logger,
        name: 'pool-managerd',
        drainMs: config.shutdown.drainMs,
        stop: async () => (await starting).stop(),
      });
      const pm = await starting;
      await pm.registered;
      logger.info({ event: 'pool-managerd.ready' }, 'pool-managerd registered');
      return;
    }
    case 'sim':
      // Bad flags are usage errors (exit 2), like the other commands' argument errors.
      return simCommand(rest).catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
    case 'config': {
      const [sub, file] = rest;
      if (sub !== 'validate' || file === undefined) fail('usage: llorch config validate FILE');
      const { config, warnings } = await loadConfigFile(file);
      for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
      process.stdout.write(
        `${file}: valid (profile ${config.profile}, ${config.pools.length} pool${config.pools.length === 1 ? '' : 's'}: ${config.pools.map((p) => p.id).join(', ')})\n`,
      );
      return;
    }
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return;
    default:
      fail(`unknown command '${command}'\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError) fail(err.message, 1);
  fail(err instanceof Error ? err.message : String(err), 1);
});
