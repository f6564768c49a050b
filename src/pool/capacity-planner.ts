/**
 * Capacity planning across the pools of one host (SPEC §5, ORCH-3003): all pools preload at
 * once, so a per-pool headroom check lets two pools that each fit an empty GPU overflow it
 * together. The planner is one object per process, shared by every supervisor. Before an engine
 * starts, it reserves that replica's memory on each of its GPUs; loads on one GPU are serialized
 * (the next replica is measured only after the previous one has allocated its memory); a
 * reservation is released when the engine ends.
 *
 * Free memory on a GPU = total − what other processes use − what the planner has reserved.
 * "Other processes" is nvidia-smi's used memory minus what our own engines hold: the memory
 * nvidia-smi lists for their processes where the process list matches this host's pids, else
 * (a container without the host's PID namespace) their reservations. Our engines count with
 * the larger of their reservation and what they hold.
 */
import type { GpuDevice, ResolvedPool } from '../config/resolved-config.js';
import { engineMemoryOn, procTable, type ProcessTable } from '../gpu/engine-memory.js';
import { attributable, type GpuSnapshot } from '../gpu/gpu-snapshot.js';
import { findGpu, type GpuInfo } from '../gpu/nvidia-smi.js';
import type { Logger } from '../util/logger.js';
import { gib, replicaDemand } from './headroom.js';

/** One replica about to load, as its supervisor knows it. */
export interface ReplicaLoad {
  readonly poolId: string;
  readonly replicaId: string;
  /** Its device mask as configured (indices or UUIDs). */
  readonly devices: readonly GpuDevice[];
  /** Slots its engine gets (fewer than configured after a GPU OOM re-estimated capacity). */
  readonly parallel: number;
}

/** One replica asking to load, with what it needs. */
export interface CapacityRequest extends ReplicaLoad {
  /**
   * What it needs on each of `devices` (same order), given the GPUs they are; `what` says how
   * the number came about, for the operator reading a refusal.
   */
  demand(gpus: readonly GpuInfo[]): Promise<{ readonly bytes: readonly number[]; readonly what: string }>;
}

/** A reservation held for one engine from before it starts until it ends. */
export interface CapacityLease {
  /** The engine was spawned: its process group, to find its memory in nvidia-smi's process list. */
  started(pid: number | undefined): void;
  /** The engine has loaded (its memory is allocated): the next replica on its GPUs may load. */
  loaded(): void;
  /** The engine ended: its memory is free again. Idempotent. */
  release(): void;
}

export type CapacityAnswer =
  | { readonly ok: true; readonly lease: CapacityLease }
  /** `retry`: memory may free (other engines end); false when waiting cannot help. */
  | { readonly ok: false; readonly cause: string; readonly retry: boolean };

/** What a supervisor asks before each engine start (`capacityGate`, or a test stand-in). */
export interface CapacityGate {
  admit(load: ReplicaLoad): Promise<CapacityAnswer>;
}

/** The planner as one pool's supervisor sees it: demand from the pool's engine and model. */
export function capacityGate(
  planner: CapacityPlanner,
  pool: ResolvedPool,
  onRefused?: (cause: string) => void,
): CapacityGate {
  return {
    admit: async (load) => {
      const answer = await planner.admit({
        ...load,
        demand: (gpus) => replicaDemand(pool, gpus, load.parallel),
      });
      if (!answer.ok) onRefused?.(answer.cause);
      return answer;
    },
  };
}

export interface CapacityPlannerOptions {
  /** A reading taken now; undefined when this host has no GPU telemetry (planning is off). */
  readonly read: () => Promise<GpuSnapshot | undefined>;
  readonly logger: Logger;
  readonly procs?: ProcessTable;
}

const NO_LEASE: CapacityLease = {
  started: () => undefined,
  loaded: () => undefined,
  release: () => undefined,
};

interface Reservation {
  readonly poolId: string;
  readonly replicaId: string;
  /** Bytes reserved per GPU UUID. */
  readonly bytes: ReadonlyMap<string, number>;
  pid: number | undefined;
}

/** How a GPU's memory divides up right now, as the planner sees it. */
export interface GpuAccount {
  readonly totalBytes: number;
  readonly othersBytes: number;
  readonly reservedBytes: number;
  readonly freeBytes: number;
  /** Replicas holding reservations there. */
  readonly holders: readonly string[];
}

export class CapacityPlanner {
  readonly #o: CapacityPlannerOptions;
  readonly #procs: ProcessTable;
  readonly #reservations = new Set<Reservation>();
  /** Per GPU UUID: the end of the queue of replicas waiting to load there. */
  readonly #queues = new Map<string, Promise<void>>();

  constructor(opts: CapacityPlannerOptions) {
    this.#o = opts;
    this.#procs = opts.procs ?? procTable;
  }

  async admit(req: CapacityRequest): Promise<CapacityAnswer> {
    const first = await this.#o.read();
    // No nvidia-smi here at all (dev without GPUs): nothing to plan against.
    if (first === undefined) return { ok: true, lease: NO_LEASE };
    const early = this.#resolve(first, req);
    if (typeof early === 'string') return { ok: false, cause: early, retry: first.stale };
    const unlock = await this.#enqueue(early.map((g) => g.uuid));
    let answer: CapacityAnswer | undefined;
    try {
      answer = await this.#plan(req);
      return answer;
    } finally {
      if (answer?.ok === true && answer.lease instanceof Lease) answer.lease.unlock = unlock;
      else unlock();
    }
  }

  /** How each GPU divides up now (for diagnostics and tests); undefined without telemetry. */
  async accounts(): Promise<ReadonlyMap<string, GpuAccount> | undefined> {
    const snap = await this.#o.read();
    if (snap === undefined) return undefined;
    return new Map(snap.gpus.map((g) => [g.uuid, this.#account(snap, g)]));
  }

  async #plan(req: CapacityRequest): Promise<CapacityAnswer> {
    // Measured after our turn came: the replica loaded before us now holds its memory.
    const snap = await this.#o.read();
    if (snap === undefined) return { ok: true, lease: NO_LEASE };
    const gpus = this.#resolve(snap, req);
    if (typeof gpus === 'string') return { ok: false, cause: gpus, retry: snap.stale };
    const { bytes, what } = await req.demand(gpus);
    for (const [i, g] of gpus.entries()) {
      const need = bytes[i] ?? 0;
      const gpu = `GPU ${describe(req.devices[i], g)}`;
      if (need > g.memoryTotalBytes)
        return {
          ok: false,
          retry: false,
          cause: `capacity: replica '${req.replicaId}' needs ${gib(need)} on ${gpu}, which has ${gib(g.memoryTotalBytes)} in all (${what})`,
        };
      const a = this.#account(snap, g);
      if (need > a.freeBytes)
        return {
          ok: false,
          retry: true,
          cause:
            `capacity: replica '${req.replicaId}' needs ${gib(need)} on ${gpu}, ${gib(a.freeBytes)} free ` +
            `(${gib(a.totalBytes)} total, ${gib(a.othersBytes)} used by other processes, ${gib(a.reservedBytes)} reserved` +
            `${a.holders.length > 0 ? ` for ${a.holders.join(', ')}` : ''}) (${what})`,
        };
    }
    const r: Reservation = {
      poolId: req.poolId,
      replicaId: req.replicaId,
      bytes: new Map(gpus.map((g, i) => [g.uuid, bytes[i] ?? 0])),
      pid: undefined,
    };
    this.#reservations.add(r);
    this.#o.logger.info(
      {
        event: 'capacity.reserved',
        pool_id: req.poolId,
        replica_id: req.replicaId,
        gpus: gpus.map((g, i) => ({ uuid: g.uuid, index: g.index, bytes: bytes[i] ?? 0 })),
      },
      `capacity: reserved ${gpus.map((g, i) => `${gib(bytes[i] ?? 0)} on GPU ${g.index}`).join(', ')} for ${req.replicaId}`,
    );
    return { ok: true, lease: new Lease(r, () => this.#reservations.delete(r)) };
  }

  /** The GPUs a request names, or why it cannot run here. */
  #resolve(snap: GpuSnapshot, req: CapacityRequest): GpuInfo[] | string {
    if (snap.stale)
      return (
        `capacity: GPU telemetry is stale (nvidia-smi failed: ${snap.error ?? 'unknown'}; last good reading at ` +
        `${new Date(snap.lastGoodMs).toISOString()}): replica '${req.replicaId}' does not load on memory nobody measured`
      );
    const out: GpuInfo[] = [];
    for (const d of req.devices) {
      const g = findGpu(snap.gpus, d);
      if (!g)
        return (
          `devices: replica '${req.replicaId}' of pool '${req.poolId}' is configured on GPU ${JSON.stringify(d)}, ` +
          `which nvidia-smi does not list on this host (GPUs: ${snap.gpus.map((x) => `${x.index} ${x.uuid}`).join(', ') || 'none'})`
        );
      out.push(g);
    }
    return out;
  }

  #account(snap: GpuSnapshot, g: GpuInfo): GpuAccount {
    const matchable = attributable(snap, this.#procs);
    let ours = 0;
    let reserved = 0;
    const holders: string[] = [];
    for (const r of this.#reservations) {
      const want = r.bytes.get(g.uuid);
      if (want === undefined) continue;
      holders.push(r.replicaId);
      // Not started: nothing of it is in the reading. Unmatchable pids: assume it holds its reservation.
      const holds =
        r.pid === undefined
          ? 0
          : matchable && snap.apps !== undefined
            ? (engineMemoryOn(snap.apps, r.pid, g.uuid, this.#procs) ?? 0)
            : want;
      ours += holds;
      reserved += Math.max(want, holds);
    }
    const used = g.memoryTotalBytes - g.memoryFreeBytes;
    const others = Math.max(0, used - ours);
    return {
      totalBytes: g.memoryTotalBytes,
      othersBytes: others,
      reservedBytes: reserved,
      freeBytes: Math.max(0, g.memoryTotalBytes - others - reserved),
      holders,
    };
  }

  /** Waits for this replica's turn to load on every one of `uuids` (always taken in one order). */
  async #enqueue(uuids: readonly string[]): Promise<() => void> {
    const releases: (() => void)[] = [];
    for (const u of [...new Set(uuids)].sort()) {
      const before = this.#queues.get(u) ?? Promise.resolve();
      let release!: () => void;
      const mine = new Promise<void>((r) => (release = r));
      const tail = before.then(() => mine);
      this.#queues.set(u, tail);
      releases.push(() => {
        release();
        if (this.#queues.get(u) === tail) this.#queues.delete(u);
      });
      await before;
    }
    let done = false;
    return () => {
      if (done) return;
      done = true;
      for (const r of releases) r();
    };
  }
}

class Lease implements CapacityLease {
  unlock: (() => void) | undefined;
  readonly #r: Reservation;
  readonly #drop: () => void;

  constructor(r: Reservation, drop: () => void) {
    this.#r = r;
    this.#drop = drop;
  }

  started(pid: number | undefined): void {
    this.#r.pid = pid;
  }

  loaded(): void {
    this.unlock?.();
    this.unlock = undefined;
  }

  release(): void {
    this.loaded();
    this.#drop();
  }
}

function describe(device: GpuDevice | undefined, g: GpuInfo): string {
  const named = typeof device === 'string' ? `${g.index}` : `${device ?? g.index}`;
  return `${named} (${g.name}, ${g.uuid})`;
}
