/**
 * How the orchestrator reaches each engine of a pool-managerd node, as the node reports it: the
 * advertised URL (the engine's own, or its guard's), the bearer key, and — until the engine is
 * proven to refuse requests without that key — a hold that keeps the replica out of placement.
 * A replica is advertised as ready only once no unauthenticated request can use it.
 */
import type { PoolSupervisor, ReplicaView } from '../pool/replica.js';
import type { Logger } from '../util/logger.js';
import { enforcesKey, type SecuredPool } from './engine-credentials.js';
import { startEngineGuard, type EngineGuard } from './engine-guard.js';
import type { ReplicaReport } from './node-protocol.js';

export interface EngineAccessOptions {
  /** Replaces the host of a local URL with the node's advertised host, when one is configured. */
  readonly advertise: (url: string) => string;
  readonly logger: Logger;
  /** The current launch of a pool and its current replica (they change with reloads and restarts). */
  readonly current: (
    poolId: string,
    replicaId: string,
  ) => { readonly secured: SecuredPool; readonly replica?: ReplicaView } | undefined;
  /** Called when something a report shows changed (a guard listens, a key check finished). */
  readonly onChange: () => void;
}

type Check = 'pending' | 'ok' | { readonly refused: string };

const metricsUrlOf = (r: ReplicaView) => (r.adapter as { metricsUrl?: string }).metricsUrl;

export class EngineAccess {
  readonly #o: EngineAccessOptions;
  /** Guards by `<pool>/<replica>` (and `…#metrics` for Triton's metrics port); stable across relaunches. */
  readonly #guards = new Map<string, EngineGuard | 'starting' | { failed: string }>();
  /** Guard starts in progress, for `prepare()`. */
  readonly #starting = new Set<Promise<unknown>>();
  /** Key checks by replica, engine URL and key: a relaunch (new port or key) is checked again. */
  readonly #checks = new Map<string, Check>();
  #closed = false;

  constructor(o: EngineAccessOptions) {
    this.#o = o;
  }

  /** The report of replica `r` of a pool launched as `secured`. */
  report(secured: SecuredPool, r: ReplicaView): ReplicaReport {
    const base = {
      replica_id: r.id,
      state: r.state.kind,
      ...(r.state.kind === 'unready'
        ? { cause: r.state.cause, ...(r.state.retrying === true ? { retrying: true } : {}) }
        : {}),
      ...(r.props === undefined ? {} : { props: r.props }),
    };
    const key = secured.key === undefined ? {} : { api_key: secured.key };
    if (secured.guardHost !== undefined) {
      const http = this.#guard(
        `${r.poolId}/${r.id}`,
        secured.guardHost,
        () => this.#replica(r)?.adapter.baseUrl,
      );
      const metrics =
        metricsUrlOf(r) === undefined
          ? undefined
          : this.#guard(`${r.poolId}/${r.id}#metrics`, secured.guardHost, () => {
              const cur = this.#replica(r);
              return cur === undefined ? undefined : metricsUrlOf(cur);
            });
      // Not guarded yet: never dispatched to (not ready), so the loopback URL it names is harmless.
      const unguarded = { base_url: this.#o.advertise(r.adapter.baseUrl), ...key };
      const failed = [http, metrics].find((g) => g !== undefined && typeof g === 'object' && 'failed' in g);
      if (failed !== undefined && 'failed' in failed)
        return {
          ...base,
          ...unguarded,
          state: 'unready',
          cause: `engine guard: ${failed.failed}`,
          retrying: false,
        };
      if (!isGuard(http) || (metrics !== undefined && !isGuard(metrics)))
        return { ...withoutReady(base), ...unguarded };
      return {
        ...base,
        base_url: this.#o.advertise(http.url),
        ...(isGuard(metrics) ? { metrics_url: this.#o.advertise(metrics.url) } : {}),
        ...key,
      };
    }
    const metricsUrl = metricsUrlOf(r);
    const reached = {
      base_url: this.#o.advertise(r.adapter.baseUrl),
      ...(metricsUrl === undefined ? {} : { metrics_url: this.#o.advertise(metricsUrl) }),
      ...key,
    };
    if (r.state.kind !== 'ready' || secured.key === undefined) return { ...base, ...reached };
    const check = this.#check(secured, r);
    if (check === 'ok') return { ...base, ...reached };
    if (check === 'pending') return { ...withoutReady(base), ...reached };
    return { ...base, ...reached, state: 'unready', cause: check.refused };
  }

  /**
   * Starts the guards the next reports of these launches need and waits until they listen (or
   * failed), so that a report never advertises a guarded replica before its guard is there.
   */
  async prepare(
    launches: Iterable<{ readonly secured: SecuredPool; readonly sup: PoolSupervisor }>,
  ): Promise<void> {
    for (const { secured, sup } of launches) for (const r of sup.replicas()) this.report(secured, r);
    await Promise.all([...this.#starting]);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const guards = [...this.#guards.values()].filter(isGuard);
    this.#guards.clear();
    await Promise.all(guards.map((g) => g.close()));
  }

  #replica(r: ReplicaView): ReplicaView | undefined {
    return this.#o.current(r.poolId, r.id)?.replica;
  }

  #guard(
    id: string,
    host: string,
    target: () => string | undefined,
  ): EngineGuard | 'starting' | { failed: string } {
    const known = this.#guards.get(id);
    if (known !== undefined) return known;
    this.#guards.set(id, 'starting');
    const [poolId = '', replicaId = ''] = id.replace(/#metrics$/, '').split('/');
    const started = startEngineGuard({
      host,
      target,
      key: () => this.#o.current(poolId, replicaId)?.secured.key,
    }).then(
      (g) => {
        if (this.#closed) return void g.close();
        this.#guards.set(id, g);
        this.#o.logger.info(
          { event: 'engine.guarded', guard: id, url: g.url },
          `engine ${id} guarded at ${g.url} (it has no API key of its own)`,
        );
        this.#o.onChange();
      },
      (err: unknown) => {
        this.#guards.set(id, { failed: `cannot listen on ${host}: ${(err as Error).message}` });
        this.#o.onChange();
      },
    );
    this.#starting.add(started);
    void started.finally(() => this.#starting.delete(started));
    return 'starting';
  }

  #check(secured: SecuredPool, r: ReplicaView): Check {
    const id = `${r.poolId}/${r.id} ${r.adapter.baseUrl} ${secured.key ?? ''}`;
    const known = this.#checks.get(id);
    if (known !== undefined) return known;
    this.#checks.set(id, 'pending');
    enforcesKey(secured.pool.engine, r.adapter.baseUrl).then(
      (enforced) => {
        if (enforced === false) {
          const cause =
            `engine at ${r.adapter.baseUrl} answers without its API key (a version that ignores ` +
            `the key?); not advertised, so that no unauthenticated request can reach it`;
          this.#o.logger.error(
            { event: 'engine.key_not_enforced', pool_id: r.poolId, replica_id: r.id },
            cause,
          );
          this.#checks.set(id, { refused: cause });
        } else this.#checks.set(id, 'ok');
        this.#o.onChange();
      },
      // Unreachable or slow: not decided; asked again a second later.
      () => {
        setTimeout(() => {
          this.#checks.delete(id);
          if (!this.#closed) this.#o.onChange();
        }, 1_000).unref();
      },
    );
    return 'pending';
  }
}

function isGuard(g: EngineGuard | 'starting' | { failed: string } | undefined): g is EngineGuard {
  return g !== undefined && typeof g === 'object' && 'url' in g;
}

/** A ready replica whose access is not settled yet is reported as still in its self-test. */
function withoutReady<T extends { state: ReplicaReport['state'] }>(r: T): T {
  return r.state === 'ready' ? { ...r, state: 'self-test' } : r;
}
