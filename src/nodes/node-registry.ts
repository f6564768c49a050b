/**
 * Orchestrator side of pool-managerd (SPEC §5): authenticates nodes by credential, applies their
 * registrations and heartbeats to the remote pools, and declares a node lost when it misses its
 * heartbeats.
 */
import { sha256Hex } from '../http/auth.js';
import { OrchError } from '../errors/orch-error.js';
import type { GpuSnapshot } from '../gpu/gpu-snapshot.js';
import type { GpuInfo } from '../gpu/nvidia-smi.js';
import type { Logger } from '../util/logger.js';
import type {
  CommandResult,
  HeartbeatAnswer,
  NodeCommand,
  NodeReport,
  RegisterAnswer,
} from './node-protocol.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
import type { RemotePoolSupervisor } from './remote-supervisor.js';

export interface NodeRegistryOptions {
  /** Accepted credentials: sha256 by node id. */
  readonly credentials: ReadonlyMap<string, string>;
  readonly timeoutMs: number;
  readonly heartbeatMs: number;
  readonly logger: Logger;
  /** The remote pool supervisors by pool id. */
  readonly pools: ReadonlyMap<string, RemotePoolSupervisor>;
}

interface NodeState {
  lastSeenMs: number;
  lost: boolean;
  gpus: readonly GpuInfo[] | undefined;
  gpuState: NodeReport['gpu_state'];
  /** Commands waiting for the node's next heartbeat. */
  outbox: NodeCommand[];
}

interface Pending {
  readonly resolve: (r: CommandResult) => void;
  readonly timer: NodeJS.Timeout;
}

/** One node as `GET /v1/nodes` lists it. */
export interface NodeListing {
  readonly nodeId: string;
  readonly state: 'up' | 'lost' | 'unseen';
  readonly lastSeenMs: number | undefined;
  readonly silentMs: number | undefined;
  /** Its GPUs as its heartbeats carried them (stale once lost); undefined before any reading. */
  readonly gpus: GpuSnapshot | undefined;
}

export class NodeRegistry {
  readonly #o: NodeRegistryOptions;
  readonly #nodes = new Map<string, NodeState>();
  readonly #pending = new Map<string, Pending>();
  #seq = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(opts: NodeRegistryOptions) {
    this.#o = opts;
    // A remote pool's GPU telemetry is its nodes' (their heartbeats), never this host's.
    for (const sup of opts.pools.values()) sup.gpuSource = (node) => this.gpuTelemetryOf(node);
    this.#timer = setInterval(() => this.#sweep(), Math.max(50, Math.floor(opts.timeoutMs / 4)));
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
  }

  /** The node behind a credential; 401 for unknown nodes or wrong credentials. */
  authenticate(nodeId: string, authorization: string | undefined): void {
    const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
    const expected = this.#o.credentials.get(nodeId);
    if (token === undefined || expected === undefined || sha256Hex(token) !== expected)
      throw new OrchError('UNAUTHORIZED', `node '${nodeId}' is not known with this credential`);
  }

  /**
   * Before a registration's body is read (its node id is in the body): the bearer must be the
   * credential of some configured node; `authenticate` then checks it is the named node's.
   */
  authenticateAnyNode(authorization: string | undefined): void {
    const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
    const hash = token === undefined ? undefined : sha256Hex(token);
    if (hash === undefined || ![...this.#o.credentials.values()].includes(hash))
      throw new OrchError(
        'UNAUTHORIZED',
        'not a node credential: send `Authorization: Bearer <node credential>`',
      );
  }

  register(report: NodeReport): RegisterAnswer {
    const was = this.#nodes.get(report.node_id);
    this.#nodes.set(report.node_id, {
      lastSeenMs: Date.now(),
      lost: false,
      gpus: report.gpus,
      gpuState: report.gpu_state,
      outbox: was?.outbox ?? [],
    });
    this.#o.logger.info(
      {
        event: 'node.registered',
        node_id: report.node_id,
        pools: report.pools.map((p) => p.pool_id),
        again: was !== undefined,
      },
      `node ${report.node_id} registered${was ? ' again' : ''}`,
    );
    this.#apply(report);
    return { node_id: report.node_id, heartbeat_ms: this.#o.heartbeatMs, timeout_ms: this.#o.timeoutMs };
  }

  /** 404 when the node is not registered (it must register first, e.g. after we restarted). */
  heartbeat(report: NodeReport): HeartbeatAnswer {
    const n = this.#nodes.get(report.node_id);
    if (!n || n.lost) throw new OrchError('NOT_FOUND', `node '${report.node_id}' is not registered`);
    n.lastSeenMs = Date.now();
    n.gpus = report.gpus ?? n.gpus;
    n.gpuState = report.gpu_state ?? n.gpuState;
    this.#apply(report);
    for (const r of report.results ?? []) {
      const p = this.#pending.get(r.id);
      if (!p) continue;
      clearTimeout(p.timer);
      this.#pending.delete(r.id);
      p.resolve(r);
    }
    return { commands: n.outbox.splice(0) };
  }

  /** Queues a command for a node; resolves with its outcome (or a timeout / unknown node). */
  command(
    nodeId: string,
    cmd: DistributiveOmit<NodeCommand, 'id'>,
    timeoutMs = 120_000,
  ): Promise<CommandResult> {
    const n = this.#nodes.get(nodeId);
    const id = `cmd-${++this.#seq}`;
    if (!n || n.lost) return Promise.resolve({ id, ok: false, cause: `node '${nodeId}' is not registered` });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        resolve({
          id,
          ok: false,
          cause: `node '${nodeId}' did not answer command ${cmd.op} within ${timeoutMs} ms`,
        });
      }, timeoutMs);
      timer.unref();
      this.#pending.set(id, { resolve, timer });
      n.outbox.push({ ...cmd, id });
    });
  }

  /**
   * Every node this orchestrator accepts or has seen, by id: `up`, `lost` (no heartbeat within
   * the timeout) or `unseen` (a configured credential that never registered).
   */
  list(): NodeListing[] {
    const ids = [...new Set([...this.#o.credentials.keys(), ...this.#nodes.keys()])].sort();
    const now = Date.now();
    return ids.map((id): NodeListing => {
      const n = this.#nodes.get(id);
      if (!n)
        return { nodeId: id, state: 'unseen', lastSeenMs: undefined, silentMs: undefined, gpus: undefined };
      return {
        nodeId: id,
        state: n.lost ? 'lost' : 'up',
        lastSeenMs: n.lastSeenMs,
        silentMs: Math.max(0, now - n.lastSeenMs),
        gpus: this.gpuTelemetryOf(id),
      };
    });
  }

  gpusOf(nodeId: string): readonly GpuInfo[] | undefined {
    return this.#nodes.get(nodeId)?.gpus;
  }

  /** A node's GPU telemetry as its heartbeats carried it; stale once the node is lost. */
  gpuTelemetryOf(nodeId: string): GpuSnapshot | undefined {
    const n = this.#nodes.get(nodeId);
    if (!n || n.gpus === undefined) return undefined;
    const s = n.gpuState;
    const lost = n.lost
      ? `node '${nodeId}' lost: no heartbeat since ${new Date(n.lastSeenMs).toISOString()}`
      : undefined;
    const error = [s?.stale === true ? s.error : undefined, lost].filter((x) => x !== undefined).join('; ');
    return {
      gpus: n.gpus,
      apps: undefined,
      stale: n.lost || s?.stale === true,
      // A node that does not say when it read its GPUs read them no later than its last heartbeat.
      lastGoodMs: s?.last_good_ms ?? n.lastSeenMs,
      error: error === '' ? undefined : error,
    };
  }

  #apply(report: NodeReport): void {
    for (const p of report.pools) {
      const sup = this.#o.pools.get(p.pool_id);
      if (!sup) {
        this.#o.logger.warn(
          { event: 'node.unknown_pool', node_id: report.node_id, pool_id: p.pool_id },
          `node ${report.node_id} reports unknown pool ${p.pool_id}`,
        );
        continue;
      }
      sup.report(report.node_id, p);
    }
  }

  #sweep(): void {
    const now = Date.now();
    for (const [id, n] of this.#nodes) {
      const silent = now - n.lastSeenMs;
      if (n.lost || silent <= this.#o.timeoutMs) continue;
      n.lost = true;
      this.#o.logger.warn(
        { event: 'node.lost', node_id: id, silent_ms: silent },
        `node ${id} lost (no heartbeat for ${silent} ms)`,
      );
      for (const sup of this.#o.pools.values()) sup.lost(id, silent);
    }
  }
}
