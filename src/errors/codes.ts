/** The one table from error code to HTTP status and retriability (SPEC §2.5). */
export const ERROR_CODES = {
  INVALID_PARAMS: { httpStatus: 400, retriable: false },
  UNAUTHORIZED: { httpStatus: 401, retriable: false },
  FORBIDDEN: { httpStatus: 403, retriable: false },
  NOT_FOUND: { httpStatus: 404, retriable: false },
  // 410: the stream events asked for fell out of the task's bounded event log; asking again
  // cannot bring them back (the client may resume after them knowingly).
  EVENTS_EXPIRED: { httpStatus: 410, retriable: false },
  PAYLOAD_TOO_LARGE: { httpStatus: 413, retriable: false },
  ADMISSION_REJECT: { httpStatus: 429, retriable: true },
  QUEUE_FULL_DROP_LRU: { httpStatus: 429, retriable: true },
  // 422: the request is well-formed but cannot be met; retrying unchanged will not help.
  DEADLINE_UNMET: { httpStatus: 422, retriable: false },
  MODEL_DEPRECATED: { httpStatus: 409, retriable: false },
  // 409: the request conflicts with current state (an existing id, a forbidden lifecycle move).
  // Retrying the same request does not help, except where the conflict is transient (a reload in
  // progress, a concurrent change): those raise it with `retriable: true`.
  CONFLICT: { httpStatus: 409, retriable: false },
  // 403: the trust policy forbids serving this artifact; it is a permission, not a state conflict.
  UNTRUSTED_ARTIFACT: { httpStatus: 403, retriable: false },
  POOL_UNREADY: { httpStatus: 503, retriable: true },
  POOL_UNAVAILABLE: { httpStatus: 503, retriable: true },
  REPLICA_EXHAUSTED: { httpStatus: 503, retriable: true },
  DECODE_TIMEOUT: { httpStatus: 504, retriable: true },
  WORKER_RESET: { httpStatus: 502, retriable: true },
  // The tool proxy's upstream (a fetched site, the search provider) failed or could not be reached.
  UPSTREAM_FAILED: { httpStatus: 502, retriable: true },
  // The tool proxy's call did not finish within its time bound (`tools.timeout_ms`).
  UPSTREAM_TIMEOUT: { httpStatus: 504, retriable: true },
  NOT_IMPLEMENTED: { httpStatus: 501, retriable: false },
  INTERNAL: { httpStatus: 500, retriable: false },
} as const satisfies Record<string, { httpStatus: number; retriable: boolean }>;

export type ErrorCode = keyof typeof ERROR_CODES;
