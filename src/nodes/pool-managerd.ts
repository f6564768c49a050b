/**
 * `llorch pool-managerd --config FILE` (SPEC §5): runs on a GPU host, owns its engine processes
 * (the same supervisors as a single-host orchestrator), registers them with the orchestrator using
 * the node credential, and streams state changes and telemetry as heartbeats. It re-registers
 * whenever the orchestrator has forgotten it, and stops its engines on SIGTERM.
 */
import type { ResolvedConfig, ResolvedPool } from '../config/resolved-config.js';
import { modelPathOf } from '../orchestrator/pool-control.js';
import { ModelPreparation } from '../catalog/model-preparation.js';
import { GpuMonitor } from '../gpu/gpu-monitor.js';
import { CapacityPlanner } from '../pool/capacity-planner.js';
import { nodeGpuReport, replicaGpuReport } from './node-gpu-report.js';
import { OrchMetrics } from '../metrics/metrics.js';
import { createSupervisor } from '../pool/pool-factory.js';
import type { PoolSupervisor } from '../pool/replica.js';
import { reapOrphanEngines, runDirOf } from '../pool/run-files.js';
import type { Logger } from '../util/logger.js';
import type {
  CommandResult,
  HeartbeatAnswer,
  NodeCommand,
  NodeReport,
  RegisterAnswer,
} from './node-protocol.js';
import { OrchClient } from '../client/orch-client.js';
import { OrchHttpError } from '../client/orch-http-error.js';
import type { NodeReport as WireNodeReport } from '../client/types.js';
import type { ResolvedNode } from '../config/resolved-config.js';
import { readFile } from 'node:fs/promises';
import type { Dispatcher } from 'undici';
import { EngineAccess } from './engine-access.js';
import { securePool, type SecuredPool } from './engine-credentials.js';

export interface PoolManagerd {
  /** Resolves once the first registration was accepted. */
  readonly registered: Promise<void>;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface PoolManagerdOptions {
  /** Where the node counts (its verifications among them); a registry of its own by default. */
  readonly metrics?: OrchMetrics;
}

/**
 * The client pool-managerd registers and heartbeats with (`registerNode`, `nodeHeartbeat`): the
 * node credential as bearer, one attempt per call, since the register and heartbeat loops pace
 * their own retries. Its answers are the node contract (`contracts/pacts/pool-managerd-llama-orch.json`).
 */
export function orchestratorClient(url: string, credential: string, dispatcher?: Dispatcher): OrchClient {
  return new OrchClient({
    baseUrl: url,
    apiKey: credential,
    timeoutMs: 5_000,
    retry: { maxAttempts: 1 },
    ...(dispatcher === undefined ? {} : { dispatcher }),
  });
}

export async function startPoolManagerd(
  config: ResolvedConfig,
  logger: Logger,
  opts: PoolManagerdOptions = {},
): Promise<PoolManagerd> {
  const node = config.node;
  if (!node) throw new Error('pool-managerd needs a `node` section in its config');
  const credential = await nodeCredential(node);
  const remote = config.pools.filter((p) => p.hosts.length > 0).map((p) => p.id);
  if (remote.length > 0)
    throw new Error(`pools ${remote.join(', ')} name hosts: a node runs its own pools only`);

  // Engines a crashed predecessor on this data_dir left running hold devices and ports: end them first.
  await reapOrphanEngines(runDirOf(config.dataDir), { logger });
  const gpu = new GpuMonitor(config, logger);
  await gpu.detect();
  const metrics = opts.metrics ?? new OrchMetrics({ processMetrics: false });
  // The node's own trust policy and roots: every load here is verified as on the orchestrator.
  const preparation = await ModelPreparation.forNode(config, metrics, logger);
  const factory = {
    config,
    logger,
    preparation,
    onProgress: (l: string) => logger.info({ event: 'engine.build' }, l),
    metrics,
    gpus: () => gpu.gpus,
    // The node's pools share its GPUs: one planner for all of them.
    planner: new CapacityPlanner({ read: () => gpu.refresh(), logger }),
    gpuTelemetry: () => gpu.snapshot(),
  };
  // Readings for the heartbeats (this node exports no metrics of its own).
  gpu.start(metrics, () => []);
  // The pools this node runs; commands (reload, stop, start) replace entries. Each launch of a
  // pool gets its engine key (`secured`), which the reports hand to the orchestrator.
  const pools = new Map<string, { config: ResolvedPool; secured: SecuredPool; sup: PoolSupervisor }>();
  for (const pool of config.pools) {
    const secured = securePool(pool);
    pools.set(pool.id, { config: pool, secured, sup: await createSupervisor(factory, secured.pool) });
  }
  const sups = () => [...pools.values()].map((p) => p.sup);
  const results: CommandResult[] = [];

  const advertise = (url: string) =>
    node.advertiseHost === undefined ? url : url.replace(/^(https?:\/\/)[^:/]+/, `$1${node.advertiseHost}`);
  const access = new EngineAccess({
    advertise,
    logger,
    current: (poolId, replicaId) => {
      const entry = pools.get(poolId);
      const replica = entry?.sup.replicas().find((r) => r.id === replicaId);
      return entry === undefined ? undefined : { secured: entry.secured, ...(replica ? { replica } : {}) };
    },
    onChange: () => (registered ? wake?.() : undefined),
  });
  const report = (): NodeReport => ({
    node_id: node.id,
    pools: [...pools.values()].map(({ sup: s, secured }) => ({
      pool_id: s.poolId,
      simulated: s.simulated === true,
      replicas: s
        .replicas()
        .map((r) => ({ ...access.report(secured, r), ...replicaGpuReport(gpu.snapshot(), r) })),
    })),
    ...nodeGpuReport(gpu.snapshot()),
    ...(results.length === 0 ? {} : { results: results.splice(0) }),
  });
  const client = orchestratorClient(node.orchestratorUrl, credential);
  const wire = async (): Promise<WireNodeReport> => {
    await access.prepare(pools.values());
    return report() as unknown as WireNodeReport;
  };

  let stopping = false;
  let heartbeatMs = node.heartbeatMs;
  let registered = false;
  let onRegistered: () => void = () => undefined;
  const first = new Promise<void>((r) => (onRegistered = r));
  let wake: (() => void) | undefined;

  const register = async (): Promise<void> => {
    for (let delay = 200; !stopping; delay = Math.min(2_000, delay * 2)) {
      try {
        const answer = (await client.registerNode(await wire())) as RegisterAnswer;
        heartbeatMs = Math.min(heartbeatMs, answer.heartbeat_ms);
        registered = true;
        onRegistered();
        logger.info(
          { event: 'node.registered', node_id: node.id, orchestrator: node.orchestratorUrl },
          `registered with ${node.orchestratorUrl}`,
        );
        return;
      } catch (err) {
        if (err instanceof OrchHttpError)
          logger.warn(
            { event: 'node.register_refused', status: err.status, err: err.message },
            'registration refused',
          );
        else
          logger.warn(
            { event: 'node.register_failed', err: (err as Error).message },
            'orchestrator unreachable',
          );
      }
      await sleep(delay);
    }
  };

  // State changes go out at once rather than at the next period.
  const watch = (sup: PoolSupervisor) => sup.onChange(() => (registered ? wake?.() : undefined));
  for (const s of sups()) watch(s);

  /** Brings up `cfg`; undefined when a replica became ready, else the cause (and it is stopped). */
  const bringUp = async (id: string, cfg: ResolvedPool): Promise<string | undefined> => {
    let sup: PoolSupervisor;
    const secured = securePool(cfg);
    try {
      sup = await createSupervisor(factory, secured.pool);
    } catch (err) {
      return (err as Error).message;
    }
    pools.set(id, { config: cfg, secured, sup });
    watch(sup);
    await sup.start();
    if (sup.replicas().some((r) => r.state.kind === 'ready')) return undefined;
    const cause = sup
      .replicas()
      .map((r) => (r.state.kind === 'unready' ? r.state.cause : undefined))
      .find((c) => c !== undefined);
    await sup.stop();
    return cause ?? 'no replica became ready';
  };

  const execute = async (cmd: NodeCommand): Promise<void> => {
    const entry = pools.get(cmd.pool_id);
    const done = (ok: boolean, cause?: string) => {
      results.push(cause === undefined ? { id: cmd.id, ok } : { id: cmd.id, ok, cause });
      wake?.();
    };
    if (!entry) return done(false, `pool '${cmd.pool_id}' does not run on node ${node.id}`);
    logger.info(
      { event: 'node.command', op: cmd.op, pool_id: cmd.pool_id },
      `executing ${cmd.op} of ${cmd.pool_id}`,
    );
    switch (cmd.op) {
      case 'stop':
        await entry.sup.stop();
        return done(true);
      case 'start': {
        const cause = await bringUp(cmd.pool_id, entry.config);
        return done(cause === undefined, cause);
      }
      case 'reload': {
        await entry.sup.stop();
        // A catalog entry comes with its digest and signature, checked here against this node's roots.
        if (cmd.model_digest !== undefined && cmd.model_signature !== undefined)
          preparation.offerSignature(cmd.model_digest, cmd.model_signature);
        const next: ResolvedPool = {
          ...entry.config,
          model: { ...entry.config.model, path: modelPathOf(cmd.model_ref), digest: cmd.model_digest },
        };
        const cause = await bringUp(cmd.pool_id, next);
        if (cause === undefined) return done(true);
        // The new model did not come up: the old one comes back.
        const back = await bringUp(cmd.pool_id, entry.config);
        return done(false, back === undefined ? cause : `${cause}; rollback failed too: ${back}`);
      }
      case 'restart': {
        const back = await entry.sup.restartReplica(cmd.replica_id, cmd.cause ?? 'asked by the orchestrator');
        return done(back, back ? undefined : `replica ${cmd.replica_id} did not come back`);
      }
      default: {
        // A newer orchestrator's command: say so rather than leave it waiting for its timeout.
        const op = (cmd as { op?: unknown }).op;
        return done(false, `unknown command '${String(op)}'`);
      }
    }
  };

  const loop = (async () => {
    await register();
    while (!stopping) {
      // Not unref'd: the heartbeat is what keeps this daemon alive while all its engines are down
      // (a restart pending), when no other handle is left.
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, heartbeatMs);
      });
      if (stopping) break;
      try {
        const answer = (await client.nodeHeartbeat(node.id, await wire())) as HeartbeatAnswer;
        for (const cmd of answer.commands) void execute(cmd);
      } catch (err) {
        if (err instanceof OrchHttpError && (err.status === 404 || err.status === 401)) {
          registered = false;
          await register();
          continue;
        }
        logger.warn({ event: 'node.heartbeat_failed', err: (err as Error).message }, 'heartbeat failed');
      }
    }
  })();
  await Promise.all(sups().map((s) => s.start()));
  wake?.();

  return {
    registered: first,
    stop: async () => {
      stopping = true;
      wake?.();
      gpu.stop();
      await Promise.all(sups().map((s) => s.stop()));
      await access.close();
      await loop;
    },
  };
}

/** The node credential: from `node.credential_file` when set, else from `$<credential_env>` (SPEC §17 §11). */
async function nodeCredential(node: ResolvedNode): Promise<string> {
  if (node.credentialFile !== undefined) {
    const text = await readFile(node.credentialFile, 'utf8').catch((err: unknown) => {
      throw new Error(
        `pool-managerd cannot read its node credential from ${node.credentialFile ?? ''}: ${(err as Error).message}`,
      );
    });
    const credential = text.trim();
    if (credential === '')
      throw new Error(`pool-managerd: node credential file ${node.credentialFile} is empty`);
    return credential;
  }
  const credential = process.env[node.credentialEnv];
  if (credential === undefined || credential === '')
    throw new Error(`pool-managerd needs its node credential in $${node.credentialEnv}`);
  return credential;
}
