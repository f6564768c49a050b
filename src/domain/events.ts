import type { ErrorCode } from '../errors/codes.js';
import type { FinishReason, ToolCall } from './sampling.js';
import type { Engine } from './types.js';

/** SSE payloads of OrchQueue v1 (SPEC §2.2). Field names are the wire names. */
export interface StartedData {
  queue_position: number;
  predicted_start_ms: number;
  replica_id?: string;
  kv_warmth?: boolean;
}
export interface TokenData {
  /** Token text. Several engine tokens may share one text run; the run's text rides on its last token. */
  t: string;
  i: number;
  /** Engine token id, for byte-exact comparisons when text is not valid UTF-8. */
  id?: number;
}
export interface MetricsData {
  queue_depth: number;
  on_time_probability: number;
  kv_warmth: boolean;
  tokens_out?: number;
  [extra: string]: unknown;
}
export interface EndData {
  tokens_out: number;
  decode_ms: number;
  tokens_in?: number;
  canceled?: boolean;
  /** Time the task waited in the queue before a replica took it (additive). */
  queue_ms?: number;
  stop_reason?: string;
  /** Why generation ended, as OpenAI names it (SPEC §17). */
  finish_reason?: FinishReason;
  /** Tool calls the model made (tasks with `tools`). */
  tool_calls?: ToolCall[];
  embeddings?: number[][];
  /** The task was hard-preempted and resumed before it completed. */
  preempted?: boolean;
  /** The replica that served the task, and its engine version. */
  replica_id?: string;
  engine_version?: string;
}
export interface ErrorData {
  code: ErrorCode;
  message: string;
  engine?: Engine;
  retriable?: boolean;
  preempted?: boolean;
}

export type TaskEvent =
  | { readonly type: 'started'; readonly data: StartedData }
  | { readonly type: 'token'; readonly data: TokenData }
  | { readonly type: 'metrics'; readonly data: MetricsData }
  | { readonly type: 'end'; readonly data: EndData }
  | { readonly type: 'error'; readonly data: ErrorData };

export type TaskEventType = TaskEvent['type'];
