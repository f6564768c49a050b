/**
 * The metrics contract of SPEC §12: names, types and label sets. Changing an entry is a breaking
 * change. Code registers metrics from this table only.
 */
export const METRICS = {
  tasks_enqueued_total: {
    type: 'counter',
    help: 'Tasks accepted into a pool queue.',
    labels: ['engine', 'engine_version', 'pool_id', 'replica_id', 'priority'],
  },
  tasks_started_total: {
    type: 'counter',
    help: 'Tasks dispatched to a replica.',
    labels: ['engine', 'engine_version', 'pool_id', 'replica_id', 'priority'],
  },
  tasks_canceled_total: {
    type: 'counter',
    help: 'Tasks canceled, by reason.',
    labels: ['engine', 'engine_version', 'pool_id', 'replica_id', 'reason'],
  },
  tasks_rejected_total: {
    type: 'counter',
    help: 'Tasks refused at admission or evicted from a queue, by reason.',
    labels: ['engine', 'reason'],
  },
  queue_depth: {
    type: 'gauge',
    help: 'Tasks waiting in a pool queue.',
    labels: ['engine', 'engine_version', 'pool_id', 'priority'],
  },
  kv_cache_usage_ratio: {
    type: 'gauge',
    help: 'KV cache usage reported by the engine (0..1).',
    labels: ['engine', 'engine_version', 'pool_id', 'replica_id'],
  },
  gpu_utilization: {
    type: 'gauge',
    help: 'GPU utilization (0..1) of the devices a replica runs on, from nvidia-smi.',
    labels: ['engine', 'engine_version', 'pool_id', 'replica_id', 'device'],
  },
  vram_used_bytes: {
    type: 'gauge',
    help: 'GPU memory in use on the devices a replica runs on, from nvidia-smi.',
    labels: ['engine', 'engine_version', 'pool_id', 'replica_id', 'device'],
  },
  latency_first_token_ms: {
    type: 'histogram',
    help: 'Time from admission to the first token, in milliseconds.',
    labels: ['engine', 'engine_version', 'pool_id', 'priority'],
    buckets: [5, 10, 25, 50, 100, 250, 500, 900, 1500, 2500, 5000, 10000, 30000],
  },
  latency_decode_ms: {
    type: 'histogram',
    help: 'Time from the first token to the end of the stream, in milliseconds.',
    labels: ['engine', 'engine_version', 'pool_id', 'priority'],
    buckets: [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 120000],
  },
  tokens_in_total: {
    type: 'counter',
    help: 'Prompt tokens processed.',
    labels: ['engine', 'engine_version', 'pool_id', 'replica_id'],
  },
  tokens_out_total: {
    type: 'counter',
    help: 'Tokens generated.',
    labels: ['engine', 'engine_version', 'pool_id', 'replica_id'],
  },
  admission_backpressure_events_total: {
    type: 'counter',
    help: 'Full-queue policy decisions (refusals and evictions).',
    labels: ['engine', 'policy'],
  },
  pool_ready: {
    type: 'gauge',
    help: 'Replicas of a pool in the Ready state.',
    labels: ['engine', 'pool_id'],
  },
  pool_restarts_total: {
    type: 'counter',
    help: 'Engine process restarts.',
    labels: ['engine', 'pool_id', 'replica_id'],
  },
  admission_share: {
    type: 'gauge',
    help: 'Observed share of dispatched tokens per tenant and priority (EWMA window).',
    labels: ['tenant', 'priority'],
  },
  deadlines_met_ratio: {
    type: 'gauge',
    help: 'Share of finished tasks that met their deadline, per priority.',
    labels: ['priority'],
  },
  preemptions_total: {
    type: 'counter',
    help: 'Preempted tasks: soft (evicted while queued) or hard (stopped while decoding).',
    labels: ['mode', 'engine'],
  },
  resumptions_total: {
    type: 'counter',
    help: 'Hard-preempted tasks resumed on a replica.',
    labels: ['engine'],
  },
  engine_failures_total: {
    type: 'counter',
    help: 'Engine process failures by class (vram_oom, host_oom, driver_reset, ecc, cuda_error, exit, preload).',
    labels: ['engine', 'pool_id', 'reason'],
  },
  pool_breaker_open: {
    type: 'gauge',
    help: 'Restart circuit breaker of a replica: 1 open (restarts held back), 0 closed.',
    labels: ['engine', 'pool_id', 'replica_id'],
  },
  catalog_verifications_total: {
    type: 'counter',
    help: 'Catalog verifications by result (verified, failed) and reason.',
    labels: ['result', 'reason', 'engine'],
  },
  model_state: {
    type: 'gauge',
    help: 'Lifecycle state of a catalog model: 1 for its current state, 0 otherwise.',
    labels: ['model_id', 'state'],
  },
  sse_clients_connected: {
    type: 'gauge',
    help: 'Open SSE streams.',
    labels: [],
  },
} as const;

export type MetricName = keyof typeof METRICS;
export type LabelsOf<N extends MetricName> = (typeof METRICS)[N]['labels'][number];

/** Cardinality budgets per label (OC-METRICS-7102). */
export const LABEL_BUDGETS: Readonly<Record<string, number>> = {
  engine: 4,
  engine_version: 64,
  pool_id: 256,
  replica_id: 1024,
  priority: 8,
  reason: 16,
  tenant: 256,
  result: 4,
  state: 8,
  mode: 4,
  model_id: 1024,
  policy: 4,
  device: 64,
};
