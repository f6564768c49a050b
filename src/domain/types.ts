/** Core vocabulary shared by every layer. Types only: no I/O lives in src/domain. */

export const ENGINES = ['llamacpp', 'vllm', 'tgi', 'triton'] as const;
export type Engine = (typeof ENGINES)[number];

export const PRIORITIES = ['interactive', 'batch'] as const;
/** Priority classes, highest first. */
export type Priority = (typeof PRIORITIES)[number];

export const WORKLOADS = ['completion', 'embedding', 'rerank'] as const;
export type Workload = (typeof WORKLOADS)[number];

export const FULL_POLICIES = ['reject', 'drop-lru', 'shed-low-priority'] as const;
export type FullPolicy = (typeof FULL_POLICIES)[number];

export type Determinism = 'strict' | 'best_effort';
export type Scope = 'data' | 'control' | 'metrics';
export type Profile = 'dev' | 'prod';

/** Injected wherever time matters, so the scheduler and tests can run on a fake clock. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
