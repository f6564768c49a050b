/** The package's public API: the typed client of llama-orch's data and control planes. */
export {
  OrchClient,
  type OrchClientOptions,
  type CallOptions,
  type RetryInfo,
  type Budget,
} from './client/orch-client.js';
export { OrchHttpError, OrchStreamError } from './client/orch-http-error.js';
export type { RetryOptions } from './client/retry-policy.js';
export type { StreamOptions } from './client/task-stream.js';
export { FleetConcurrency, capacityLimit, type FleetConcurrencyOptions } from './client/fleet-concurrency.js';
export type * from './client/types.js';
