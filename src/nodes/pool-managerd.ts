/**
 * `llorch pool-managerd --config FILE` (SPEC §5): runs on a GPU host, owns its engine processes
 * (the same supervisors as a single-host orchestrator), registers them with the orchestrator using
 * the node credential, and streams state changes and telemetry as heartbeats. It re-registers
 * whenever the orchestrator has forgotten it, and stops its engines on SIGTERM.
 */
import type { ResolvedConfig, ResolvedPool } from '../config/resolved-config.js';
import { modelPathOf } from '../orchestrator/pool-control.js';
import { GpuMonitor } from '../gpu/gpu-monitor.js';
import { OrchMetrics } from '../metrics/metrics.js';
import { createSupervisor } from '../pool/pool-factory.js';
import type { PoolSupervisor } from '../pool/replica.js';
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

export interface PoolManagerd {
  /** Resolves once the first registration was accepted. */
  readonly registered: Promise<void>;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startPoolManagerd(config: ResolvedConfig, logger: Logger): Promise<PoolManagerd> {
  const node = config.node;
  if (!node) throw new Error('pool-managerd needs a `node` section in its config');
  const credential = process.env[node.credentialEnv];
  if (credential === undefined || credential === '')
    throw new Error(`pool-managerd needs its node credential in $${node.credentialEnv}`);
  const remote = config.pools.filter((p) => p.hosts.length > 0).map((p) => p.id);
  if (remote.length > 0)
    throw new Error(`pools ${remote.join(', ')} name hosts: a node runs its own pools only`);

  const gpu = new GpuMonitor(config, logger);
  await gpu.detect();
  const metrics = new OrchMetrics({ processMetrics: false });
  const factory = {
    config,
    logger,
    onProgress: (l: string) => logger.info({ event: 'engine.build' }, l),
    metrics,
    gpus: () => gpu.gpus,
  };
  // The pools this node runs; commands (reload, stop, start) replace entries.
  const pools = new Map<string, { config: ResolvedPool; sup: PoolSupervisor }>();
  for (const pool of config.pools)
    pools.set(pool.id, { config: pool, sup: await createSupervisor(factory, pool) });
  const sups = () => [...pools.values()].map((p) => p.sup);
  const results: CommandResult[] = [];

  const advertise = (url: string) =>
    node.advertiseHost === undefined ? url : url.replace(/^(https?:\/\/)[^:/]+/, `$1${node.advertiseHost}`);
  const report = (): NodeReport => ({
    node_id: node.id,
    pools: sups().map((s) => ({
      pool_id: s.poolId,
      simulated: s.simulated === true,
      replicas: s.replicas().map((r) => {
        const metricsUrl = (r.adapter as { metricsUrl?: string }).metricsUrl;
        return {
          replica_id: r.id,
          state: r.state.kind,
          ...(r.state.kind === 'unready'
            ? { cause: r.state.cause, ...(r.state.retrying === true ? { retrying: true } : {}) }
            : {}),
          base_url: advertise(r.adapter.baseUrl),
          ...(metricsUrl === undefined ? {} : { metrics_url: advertise(metricsUrl) }),
          ...(r.props === undefined ? {} : { props: r.props }),
        };
      }),
    })),
    ...(gpu.gpus === undefined ? {} : { gpus: gpu.gpus }),
    ...(results.length === 0 ? {} : { results: results.splice(0) }),
  });
  // One attempt per call: the register and heartbeat loops below pace their own retries.
  const client = new OrchClient({
    baseUrl: node.orchestratorUrl,
    apiKey: credential,
    timeoutMs: 5_000,
    retry: { maxAttempts: 1 },
  });
  const wire = (): WireNodeReport => report() as unknown as WireNodeReport;

  let stopping = false;
  let heartbeatMs = node.heartbeatMs;
  let registered = false;
  let onRegistered: () => void = () => undefined;
  const first = new Promise<void>((r) => (onRegistered = r));
  let wake: (() => void) | undefined;

  const register = async (): Promise<void> => {
    for (let delay = 200; !stopping; delay = Math.min(2_000, delay * 2)) {
      try {
        const answer = (await client.registerNode(wire())) as RegisterAnswer;
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
    try {
      sup = await createSupervisor(factory, cfg);
    } catch (err) {
      return (err as Error).message;
    }
    pools.set(id, { config: cfg, sup });
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
        const next: ResolvedPool = {
          ...entry.config,
          model: { ...entry.config.model, path: modelPathOf(cmd.model_ref), digest: undefined },
        };
        const cause = await bringUp(cmd.pool_id, next);
        if (cause === undefined) return done(true);
        // The new model did not come up: the old one comes back.
        const back = await bringUp(cmd.pool_id, entry.config);
        return done(false, back === undefined ? cause : `${cause}; rollback failed too: ${back}`);
      }
    }
  };

  const loop = (async () => {
    await register();
    while (!stopping) {
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, heartbeatMs).unref();
      });
      if (stopping) break;
      try {
        const answer = (await client.nodeHeartbeat(node.id, wire())) as HeartbeatAnswer;
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
      await loop;
    },
  };
}
