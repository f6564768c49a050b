import type { GenerationFields } from './sampling.js';
import type { Determinism, Engine, Priority, Workload } from './types.js';

/** A task as accepted by admission: validated, tenant-bound, with defaults applied. */
export interface TaskSpec extends GenerationFields {
  readonly taskId: string;
  readonly sessionId: string;
  readonly tenant: string;
  readonly workload: Workload;
  readonly modelRef: string;
  readonly engine: Engine;
  readonly ctx: number;
  readonly priority: Priority;
  readonly seed: number;
  readonly determinism: Determinism;
  readonly samplerProfileVersion: string;
  readonly prompt: string | undefined;
  readonly inputs: readonly string[] | undefined;
  readonly maxTokens: number;
  readonly deadlineMs: number;
  readonly expectedTokens: number | undefined;
  readonly kvHint: 'reuse' | 'cold' | undefined;
  /**
   * Prompt length in engine tokens at admission: the engine tokenizer's count, or an upper bound
   * on it where admission proved the fit without one (`promptTokenBound`: no session budget). The
   * engine's own count arrives with the task's end (`tokens_in`).
   */
  readonly promptTokens: number;
  /** `promptTokens` is an upper bound (UTF-8 bytes + special tokens), not the engine's count. */
  readonly promptTokensBounded?: boolean | undefined;
  readonly correlationId: string;
  readonly acceptedAtMs: number;
  /** Read only by the HTTP request that submitted it (see `SubmitInput.boundToRequest`). */
  readonly boundToRequest?: boolean | undefined;
  /** Where a placement plugin lets the task run (SPEC §10); absent: the built-in placement. */
  readonly placement?: TaskPlacement | undefined;
}

/**
 * A placement plugin's decision for one task, taken once at admission and applied at every
 * dispatch of it (late binding, a move between members of its replica set, a retry).
 */
export interface TaskPlacement {
  /** The plugin that decided (logs). */
  readonly plugin: string;
  /** The only replicas the task may run on; absent: any replica of its replica set. */
  readonly allow?: readonly string[] | undefined;
  /** Preference among replicas with a free slot, higher first; unnamed replicas score 0. */
  readonly scores?: Readonly<Record<string, number>> | undefined;
}

export type TaskState =
  | { readonly kind: 'queued' }
  | { readonly kind: 'dispatched'; readonly replicaId: string }
  | { readonly kind: 'streaming'; readonly replicaId: string }
  | { readonly kind: 'completed' }
  | { readonly kind: 'canceled' }
  | { readonly kind: 'failed'; readonly code: string }
  | { readonly kind: 'evicted'; readonly code: string };

export const isTerminal = (s: TaskState): boolean =>
  s.kind === 'completed' || s.kind === 'canceled' || s.kind === 'failed' || s.kind === 'evicted';
