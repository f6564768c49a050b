import type { GenerationFields } from './sampling.js';
import type { Determinism, Engine, Priority, Workload } from './types.js';

/**
 * A task submission after schema validation, in domain terms. The HTTP layer maps the OpenAPI
 * `TaskRequest` body onto this; tenancy comes from the credential, never from the body.
 */
export interface SubmitInput extends GenerationFields {
  readonly taskId: string;
  readonly sessionId: string;
  readonly workload: Workload;
  readonly modelRef: string;
  readonly engine: Engine;
  readonly ctx: number;
  readonly priority: Priority;
  readonly seed: number | undefined;
  readonly determinism: Determinism;
  readonly samplerProfileVersion: string;
  readonly prompt: string | undefined;
  readonly inputs: readonly string[] | undefined;
  readonly maxTokens: number;
  /**
   * The request set no limit (OpenAI's `max_tokens` absent): generate up to the context left
   * after the prompt, as the engines do. `maxTokens` is then the least the prompt must leave.
   */
  readonly maxTokensFromCtx?: boolean | undefined;
  readonly deadlineMs: number;
  readonly expectedTokens: number | undefined;
  readonly kvHint: 'reuse' | 'cold' | undefined;
  /**
   * The task's only reader is the HTTP request that submitted it (the OpenAI surface): a graceful
   * shutdown ends it (its client gets a typed error) instead of keeping it queued for the next
   * start, and a restart does not run it again for a response nobody reads.
   */
  readonly boundToRequest?: boolean | undefined;
  /** Run on a Deprecated model (only tenants the catalog policy permits). */
  readonly override?: boolean | undefined;
}

/** Who is asking: resolved from the API key (or the keyless local principal). */
export interface Principal {
  readonly tenant: string;
  /** Key id, safe to log; `anonymous` without auth. */
  readonly keyId: string;
  readonly scopes: readonly ('data' | 'control')[];
}

/** The `202 Accepted` answer of `POST /v1/tasks`. */
export interface Accepted {
  readonly taskId: string;
  readonly queuePosition: number;
  readonly predictedStartMs: number;
  readonly backoffMs: number;
  /** What is left of the session's budgets (only those configured), before this task runs. */
  readonly budget: { readonly tokens?: number; readonly wallMs?: number; readonly cost?: number };
  /**
   * Set on the replay of an earlier acceptance (an identical resubmission of a used `task_id`,
   * SPEC §17 §2.1): true once that task ended (`200`), false while it has not (`202`).
   */
  readonly ended?: boolean;
}
