/**
 * The protocol between pool-managerd (one per GPU host) and the orchestrator (SPEC §5): the node
 * registers its pools and replicas, then heartbeats carry state changes and telemetry; the
 * answer carries commands. Node endpoints authenticate with a node credential (Bearer).
 */
import type { EngineProps } from '../engines/adapter.js';
import type { GpuDevice } from '../config/resolved-config.js';
import type { GpuInfo } from '../gpu/nvidia-smi.js';
import type { ReplicaStateKind } from '../pool/replica.js';

export interface ReplicaReport {
  /** The replica id on its node (`<pool>-r<i>`). */
  readonly replica_id: string;
  readonly state: ReplicaStateKind;
  readonly cause?: string;
  readonly retrying?: boolean;
  /** Where the orchestrator reaches the engine. */
  readonly base_url?: string;
  readonly metrics_url?: string;
  /**
   * The bearer key the engine at `base_url` requires (its own API key, or the key of the guard
   * pool-managerd runs in front of an engine without one). It travels only on this
   * authenticated channel and is never logged.
   */
  readonly api_key?: string;
  readonly props?: EngineProps;
  /** Its GPUs as configured on the node (index or UUID). */
  readonly devices?: readonly GpuDevice[];
  /** Memory its engine holds per device (keyed as `devices` spells them), where nvidia-smi reports it. */
  readonly vram_used_bytes?: Readonly<Record<string, number>>;
}

export interface PoolReport {
  readonly pool_id: string;
  readonly simulated: boolean;
  readonly replicas: readonly ReplicaReport[];
}

export interface NodeReport {
  readonly node_id: string;
  readonly pools: readonly PoolReport[];
  /** The node's last good nvidia-smi reading. */
  readonly gpus?: readonly GpuInfo[];
  /** Whether `gpus` is current (absent from older nodes). */
  readonly gpu_state?: { readonly stale: boolean; readonly last_good_ms: number; readonly error?: string };
  /** Outcomes of commands executed since the last heartbeat. */
  readonly results?: readonly CommandResult[];
}

export interface CommandResult {
  readonly id: string;
  readonly ok: boolean;
  readonly cause?: string;
}

export interface RegisterAnswer {
  readonly node_id: string;
  readonly heartbeat_ms: number;
  readonly timeout_ms: number;
}

export interface HeartbeatAnswer {
  readonly commands: readonly NodeCommand[];
}

/** Commands the orchestrator queues for a node, delivered in heartbeat answers. */
export type NodeCommand =
  | { readonly id: string; readonly op: 'stop' | 'start'; readonly pool_id: string }
  | {
      readonly id: string;
      readonly op: 'reload';
      readonly pool_id: string;
      readonly model_ref: string;
      /** The catalog entry's digest, when the reload named one: the node loads only these bytes. */
      readonly model_digest?: string;
      /** The entry's minisign signature, checked against the node's own trust roots. */
      readonly model_signature?: string;
    }
  | {
      readonly id: string;
      /** Kill one replica's engine and restart it (ejected for failing tasks); ok once it is ready again. */
      readonly op: 'restart';
      readonly pool_id: string;
      /** The replica id on the node (`<pool>-r<i>`). */
      readonly replica_id: string;
      readonly cause?: string;
    };
