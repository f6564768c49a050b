/**
 * The orchestrator's view of a pool whose engines run on other hosts (pool-managerd): replicas
 * come from node reports, adapters point at the engines' advertised URLs, and a lost node turns
 * its replicas unready (`lost`), which ends their running tasks with WORKER_RESET.
 */
import type { ResolvedPool } from '../config/resolved-config.js';
import type { EngineAdapter } from '../engines/adapter.js';
import { adapterForUrls } from '../pool/engine-launcher.js';
import type { GpuDevice } from '../config/resolved-config.js';
import type { GpuSnapshot } from '../gpu/gpu-snapshot.js';
import type { HostGpuTelemetry, PoolSupervisor, ReplicaState, ReplicaView } from '../pool/replica.js';
import type { Logger } from '../util/logger.js';
import type { CommandResult, NodeCommand, PoolReport, ReplicaReport } from './node-protocol.js';

/** Sends a command to a node and resolves with its outcome (the node registry's `command`). */
export type NodeCommandSender = (
  node: string,
  cmd: Omit<Extract<NodeCommand, { op: 'restart' }>, 'id'>,
) => Promise<CommandResult>;

interface RemoteReplica {
  readonly id: string;
  readonly node: string;
  state: ReplicaState;
  adapter: EngineAdapter;
  baseUrl: string;
  /** The bearer key the adapter sends (never logged). */
  apiKey: string | undefined;
  props: ReplicaView['props'];
  /** Its GPUs and their memory, as its node reports them. */
  devices?: readonly GpuDevice[] | undefined;
  vram?: Readonly<Record<string, number>> | undefined;
}

export class RemotePoolSupervisor implements PoolSupervisor {
  readonly poolId: string;
  simulated = false;
  readonly #pool: ResolvedPool;
  readonly #logger: Logger;
  readonly #replicas = new Map<string, RemoteReplica>();
  readonly #listeners = new Set<(r: ReplicaView) => void>();
  readonly #send: NodeCommandSender | undefined;
  /** A node's GPU telemetry from its heartbeats (set by the node registry). */
  gpuSource: ((node: string) => GpuSnapshot | undefined) | undefined;

  constructor(pool: ResolvedPool, logger: Logger, send?: NodeCommandSender) {
    this.poolId = pool.id;
    this.#pool = pool;
    this.#logger = logger;
    this.#send = send;
  }

  /**
   * Asks the replica's node (pool-managerd) to kill and restart its engine; the node answers once
   * the replica passed its self-test again (or could not). Its state changes arrive in the node's
   * reports as for any restart.
   */
  async restartReplica(replicaId: string, cause: string): Promise<boolean> {
    const r = this.#replicas.get(replicaId);
    if (!r || this.#send === undefined) {
      this.#logger.warn(
        { event: 'replica.restart_unsent', pool_id: this.poolId, replica_id: replicaId, cause },
        `cannot restart ${replicaId}: ${r ? 'no command channel to its node' : 'unknown replica'}`,
      );
      return false;
    }
    const local = replicaId.slice(r.node.length + 1);
    this.#logger.warn(
      { event: 'replica.restart_requested', pool_id: this.poolId, replica_id: r.id, node_id: r.node, cause },
      `${r.id}: asking node ${r.node} to restart the engine (${cause})`,
    );
    const result = await this.#send(r.node, {
      op: 'restart',
      pool_id: this.poolId,
      replica_id: local,
      cause,
    });
    if (!result.ok)
      this.#logger.warn(
        { event: 'replica.restart_failed', pool_id: this.poolId, replica_id: r.id, cause: result.cause },
        `${r.id}: restart on node ${r.node} did not bring it back: ${result.cause ?? 'failed'}`,
      );
    return result.ok;
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {
    await Promise.all([...this.#replicas.values()].map((r) => r.adapter.close()));
  }

  replicas(): readonly ReplicaView[] {
    return [...this.#replicas.values()].map((r) => this.#view(r));
  }

  onChange(listener: (r: ReplicaView) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Applies a node's report: new replicas, state changes, moved engines (re-registration). */
  report(node: string, pool: PoolReport): void {
    this.simulated = pool.simulated;
    const seen = new Set<string>();
    for (const rep of pool.replicas) {
      const id = `${node}/${rep.replica_id}`;
      seen.add(id);
      this.#apply(node, id, rep);
    }
    for (const r of this.#replicas.values())
      if (r.node === node && !seen.has(r.id)) this.#set(r, { kind: 'stopped' });
  }

  /** The node stopped answering: its replicas are gone until it registers again. */
  lost(node: string, silentMs: number): void {
    for (const r of this.#replicas.values()) {
      if (r.node !== node || r.state.kind === 'stopped') continue;
      if (r.state.kind === 'unready' && r.state.lost === true) continue;
      this.#set(r, {
        kind: 'unready',
        cause: `host '${node}' lost: no heartbeat for ${silentMs} ms`,
        retrying: true,
        lost: true,
      });
    }
  }

  #apply(node: string, id: string, rep: ReplicaReport): void {
    let r = this.#replicas.get(id);
    const baseUrl = rep.base_url ?? '';
    // The node's key for this engine (one per launch); a node that sends none leaves the key
    // this pool's own config names, if any.
    const apiKey = rep.api_key ?? this.#pool.launch.apiKey;
    if (!r || r.baseUrl !== baseUrl || r.apiKey !== apiKey) {
      const adapter = adapterForUrls(
        { ...this.#pool, launch: { ...this.#pool.launch, apiKey } },
        { base: baseUrl, metrics: rep.metrics_url },
        rep.props?.modelDigest,
      );
      void r?.adapter.close();
      r = { id, node, state: { kind: 'stopped' }, adapter, baseUrl, apiKey, props: rep.props };
      this.#replicas.set(id, r);
    }
    r.props = rep.props ?? r.props;
    r.devices = rep.devices ?? r.devices;
    r.vram = rep.vram_used_bytes;
    const state: ReplicaState =
      rep.state === 'unready'
        ? {
            kind: 'unready',
            cause: `${node}: ${rep.cause ?? 'unready'}`,
            ...(rep.retrying === true ? { retrying: true } : {}),
          }
        : { kind: rep.state };
    if (
      state.kind !== r.state.kind ||
      (state.kind === 'unready' && r.state.kind === 'unready' && state.cause !== r.state.cause)
    )
      this.#set(r, state);
  }

  #view(r: RemoteReplica): ReplicaView {
    const devices = r.devices ?? (this.#pool.devices === 'cpu' ? undefined : this.#pool.devices);
    const gpu =
      devices === undefined
        ? {}
        : {
            gpu: {
              devices,
              host: r.node,
              memoryBytes: r.vram === undefined ? undefined : new Map(Object.entries(r.vram)),
            },
          };
    return { id: r.id, poolId: this.poolId, state: r.state, adapter: r.adapter, props: r.props, ...gpu };
  }

  gpuTelemetry(): readonly HostGpuTelemetry[] {
    return this.#pool.hosts.map((host) => ({ host, snapshot: this.gpuSource?.(host) }));
  }

  #set(r: RemoteReplica, state: ReplicaState): void {
    r.state = state;
    const fields = {
      event: 'replica.state',
      pool_id: this.poolId,
      replica_id: r.id,
      node_id: r.node,
      state: state.kind,
    };
    if (state.kind === 'unready')
      this.#logger.warn({ ...fields, cause: state.cause }, `replica ${r.id} unready: ${state.cause}`);
    else this.#logger.info(fields, `replica ${r.id} ${state.kind}`);
    for (const l of this.#listeners) l(this.#view(r));
  }
}
