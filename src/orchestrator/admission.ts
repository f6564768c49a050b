/**
 * The checks, predictions and refusals that admission (`admit.ts`) is built from. Each check
 * either passes or throws a typed `OrchError`; nothing here changes a queue.
 */
import type { SubmitInput } from '../domain/submit.js';
import { PRIORITIES, type Priority } from '../domain/types.js';
import { admissionShortfall, type SessionUsage } from '../sessions/budget.js';
import type { QuotaRefusal } from '../scheduler/tenant-quotas.js';
import { OrchError } from '../errors/orch-error.js';
import type { OfferResult } from '../scheduler/pool-queue.js';
import type { PoolRuntime, QueuedTask } from './pool-runtime.js';
import { admitsWork, sameReplicaSet } from './replica-set.js';
import type { EngineAdapter } from '../engines/adapter.js';
import { generateRequestOf } from './generate-request.js';
import { checkSamplerProfile } from '../engines/sampler-profile.js';

/**
 * Step 3: the member of the replica set serving `model_ref` with `engine` that takes the task,
 * or the refusal of the most hopeful member when none takes work now.
 */
export function resolvePool(
  pools: readonly PoolRuntime[],
  input: SubmitInput,
  prefer?: PoolRuntime,
): PoolRuntime {
  const matches = pools.filter(
    (p) =>
      p.config.model.id === input.modelRef ||
      (p.config.model.digest !== undefined && p.config.model.digest === input.modelRef),
  );
  if (matches.length === 0) {
    throw new OrchError('INVALID_PARAMS', `model_ref: unknown model '${input.modelRef}'`);
  }
  const candidates = matches.filter((p) => p.config.engine === input.engine);
  if (candidates.length === 0) {
    const served = [...new Set(matches.map((p) => p.config.engine))].join(', ');
    throw new OrchError(
      'INVALID_PARAMS',
      `engine: model '${input.modelRef}' is not served by engine '${input.engine}' (served by: ${served})`,
    );
  }
  const admitting = candidates.filter(admitsWork);
  // With no member taking work, the refusal comes from the most hopeful one (retriable first).
  const pool =
    admitting.length > 0
      ? chooseMember(admitting, prefer, input.priority)
      : (candidates.find((p) => p.reloading || p.availability() === 'unready') ?? candidates[0]!);
  checkWorkload(pool, input);
  if (pool.draining && !pool.reloading)
    throw new OrchError('POOL_UNAVAILABLE', `pool '${pool.id}' is drained`, {
      engine: pool.config.engine,
      poolId: pool.id,
      // An operator's drain ends when they resume the pool: a hint, not a promise.
      retryAfterMs: 5_000,
    });
  if (pool.reloading)
    throw new OrchError('POOL_UNREADY', `pool '${pool.id}' is reloading its model`, {
      engine: pool.config.engine,
      poolId: pool.id,
      retryAfterMs: 2_000,
    });
  const availability = pool.availability();
  if (availability !== 'ready') {
    const retryAfterMs = Math.max(1000, Math.min(pool.config.launch.startupTimeoutMs, 5000));
    throw availability === 'unready'
      ? new OrchError('POOL_UNREADY', `pool '${pool.id}' is still starting`, {
          engine: pool.config.engine,
          poolId: pool.id,
          retryAfterMs,
        })
      : new OrchError('POOL_UNAVAILABLE', `pool '${pool.id}' has no live replica`, {
          engine: pool.config.engine,
          poolId: pool.id,
          retryAfterMs,
        });
  }
  return pool;
}

/**
 * The member of the replica set a new task joins. A session stays on the member that holds its
 * KV while that member takes work, else within its replica set; otherwise the member whose
 * queue would start the task soonest; members whose SLO breaker sheds the task's class come last.
 * Dispatch is still late-bound: an idle member takes
 * queued work from a busy sibling (Dispatcher).
 */
function chooseMember(
  admitting: readonly PoolRuntime[],
  prefer: PoolRuntime | undefined,
  priority: Priority,
): PoolRuntime {
  // A member whose SLO breaker sheds this class is the last choice (ORCH-3040).
  const open = admitting.filter((p) => !p.sloBreaker.sheds(priority));
  if (open.length > 0 && open.length < admitting.length) return chooseMember(open, prefer, priority);
  if (prefer && admitting.includes(prefer)) return prefer;
  // One set per request, chosen deterministically (streams are reproducible within a set, SPEC
  // §14): the session's, else the first configured set with a member that takes work.
  const home = (prefer && admitting.find((p) => sameReplicaSet(p, prefer))) ?? admitting[0]!;
  const members = admitting.filter((p) => sameReplicaSet(p, home));
  let best = members[0]!;
  let bestWait = best.predictStartMs(best.queue.size);
  for (const p of members.slice(1)) {
    const wait = p.predictStartMs(p.queue.size);
    if (wait < bestWait) {
      best = p;
      bestWait = wait;
    }
  }
  return best;
}

/** Most embedding inputs one task may carry (data.yaml `inputs.maxItems`). */
export const MAX_INPUTS = 256;
/** Most UTF-8 bytes all of a task's inputs may hold together (data.yaml `inputs`). */
export const MAX_INPUTS_BYTES = 1_048_576;

/**
 * Inputs are tokenized by the engine before admission (one round trip each, a few at once: see
 * `TOKENIZE_CONCURRENCY`): their number and size are bounded first, so a huge batch is a quick
 * 400, not a long series of engine calls.
 */
function checkInputsBounds(
  inputs: readonly string[],
  opts: { engine: PoolRuntime['config']['engine']; poolId: string },
): void {
  if (inputs.length > MAX_INPUTS)
    throw new OrchError(
      'INVALID_PARAMS',
      `inputs: at most ${MAX_INPUTS} inputs (got ${inputs.length})`,
      opts,
    );
  let bytes = 0;
  for (const text of inputs) {
    bytes += Buffer.byteLength(text, 'utf8');
    if (bytes > MAX_INPUTS_BYTES)
      throw new OrchError('INVALID_PARAMS', `inputs: more than ${MAX_INPUTS_BYTES} bytes in all`, opts);
  }
}

/** Step 3, part two: the pool's engine serves the workload, with the matching input field. */
export function checkWorkload(pool: PoolRuntime, input: SubmitInput): void {
  const opts = { engine: pool.config.engine, poolId: pool.id };
  switch (input.workload) {
    case 'completion':
      if (input.prompt === undefined && input.messages === undefined)
        throw new OrchError(
          'INVALID_PARAMS',
          `prompt: 'prompt' or 'messages' is required for workload 'completion'`,
          opts,
        );
      if (!pool.servesCompletions())
        throw new OrchError(
          'INVALID_PARAMS',
          `workload: pool '${pool.id}' (${pool.config.engine}) serves an embedding model: it does not generate`,
          opts,
        );
      return;
    case 'embedding':
      if (input.messages !== undefined)
        throw new OrchError('INVALID_PARAMS', `messages: workload 'embedding' takes 'inputs'`, opts);
      if (input.inputs === undefined || input.inputs.length === 0)
        throw new OrchError('INVALID_PARAMS', `inputs: workload 'embedding' needs at least one input`, opts);
      checkInputsBounds(input.inputs, opts);
      if (!pool.servesEmbeddings())
        throw new OrchError(
          'INVALID_PARAMS',
          `workload: pool '${pool.id}' (${pool.config.engine}) does not serve embeddings`,
          opts,
        );
      return;
    case 'rerank':
      throw new OrchError(
        'INVALID_PARAMS',
        `workload: pool '${pool.id}' (${pool.config.engine}) does not serve 'rerank'`,
        opts,
      );
  }
}

/** Step 4, part one: the requested context fits the model's (ORCH-3014, OC-CORE-1020). */
export function checkCtx(pool: PoolRuntime, input: SubmitInput): void {
  if (input.ctx > pool.config.ctx) {
    throw new OrchError(
      'INVALID_PARAMS',
      `ctx: ${input.ctx} exceeds the context length of model '${input.modelRef}' (${pool.config.ctx})`,
      { engine: pool.config.engine, poolId: pool.id },
    );
  }
}

/**
 * Step 4, part two: prompt tokens + max_tokens fit the context (ORCH-3015, OC-CORE-1021),
 * counted by the engine's own tokenizer. Each ready replica gets `timeoutMs`, the least loaded
 * and not recently failed first; one that times out or fails is passed over (and tried last for
 * a while), so a frozen replica costs one short wait, not every request. When none answers the
 * refusal is a retriable 503, never a 500.
 */
export async function countPromptTokens(
  pool: PoolRuntime,
  input: SubmitInput,
  timeoutMs: number,
): Promise<number> {
  const opts = { engine: pool.config.engine, poolId: pool.id };
  const replicas = pool.tokenizerReplicas();
  let failure = 'no replica is ready';
  for (const replica of replicas) {
    try {
      const signal = AbortSignal.timeout(timeoutMs);
      const counts =
        input.messages !== undefined
          ? [await countChat(replica.adapter, input, signal)]
          : await countEach(
              replica.adapter,
              input.workload === 'embedding' ? (input.inputs ?? []) : [input.prompt ?? ''],
              signal,
            );
      pool.tokenizerAnswered(replica.id);
      return checkPromptTokens(input, counts, opts);
    } catch (err) {
      // The request's own fault is the same on every replica.
      if (err instanceof OrchError && err.code === 'INVALID_PARAMS') throw err;
      pool.tokenizerFailed(replica.id);
      failure = `replica ${replica.id}: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  throw new OrchError(
    'POOL_UNAVAILABLE',
    `no replica of pool '${pool.id}' could count the prompt's tokens within ${timeoutMs} ms (${replicas.length} tried; last: ${failure})`,
    { ...opts, retryAfterMs: Math.max(1_000, timeoutMs) },
  );
}

/**
 * Round trips in flight at once while an embedding task's inputs are counted. No engine's
 * tokenizer endpoint counts several texts apart in one call (llama.cpp's `/tokenize` flattens an
 * array of `content` into one sequence; vLLM's `/tokenize` and TGI's take one string), so the
 * inputs are counted over a few concurrent requests instead of one after another.
 */
export const TOKENIZE_CONCURRENCY = 8;

/** Token counts of `texts`, in order; the first failure aborts the rest. */
async function countEach(
  adapter: EngineAdapter,
  texts: readonly string[],
  signal: AbortSignal,
): Promise<number[]> {
  if (texts.length === 1) return [await adapter.countTokens(texts[0] ?? '', signal)];
  const failed = new AbortController();
  const both = AbortSignal.any([signal, failed.signal]);
  const counts = new Array<number>(texts.length).fill(0);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < texts.length && !both.aborted) {
      const k = next++;
      counts[k] = await adapter.countTokens(texts[k] ?? '', both);
    }
  };
  const workers = Array.from({ length: Math.min(TOKENIZE_CONCURRENCY, texts.length) }, () =>
    worker().catch((err: unknown) => {
      failed.abort(err);
      throw err;
    }),
  );
  await Promise.all(workers);
  return counts;
}

async function countChat(adapter: EngineAdapter, input: SubmitInput, signal: AbortSignal): Promise<number> {
  const count = adapter.countChatTokens?.bind(adapter);
  if (!count)
    throw new OrchError(
      'INVALID_PARAMS',
      `messages: engine '${adapter.engine}' has no chat template support`,
      {
        engine: adapter.engine,
      },
    );
  return count({ prompt: '', messages: input.messages, tools: input.tools }, signal);
}

/**
 * Step 4: every chat and sampling field is one the pool's engine honours (SPEC §17): a field it
 * cannot honour is refused naming the field and the engine, before any engine round trip. The
 * check is the adapter's, since what an engine honours can depend on what it declared (Triton's
 * ensemble inputs, vLLM's tool parser).
 */
export function checkEngineFields(pool: PoolRuntime, input: SubmitInput): void {
  // An unknown profile is the request's fault: refused here, not on the stream after acceptance.
  try {
    checkSamplerProfile(pool.config.engine, input.samplerProfileVersion);
  } catch (err) {
    if (err instanceof OrchError)
      throw new OrchError(err.code, err.message, { engine: pool.config.engine, poolId: pool.id });
    throw err;
  }
  if (input.workload !== 'completion') {
    const set = GENERATION_ONLY.find((f) => input[f] !== undefined);
    if (set !== undefined)
      throw new OrchError('INVALID_PARAMS', `${WIRE_NAMES[set]}: only completion tasks take it`, {
        engine: pool.config.engine,
        poolId: pool.id,
      });
    return;
  }
  const adapter = pool.tokenizerReplicas()[0]?.adapter;
  if (!adapter) return; // No ready replica: counting the prompt's tokens refuses the task.
  try {
    adapter.checkRequest(generateRequestOf({ ...input, seed: input.seed ?? 0 }));
  } catch (err) {
    if (err instanceof OrchError && err.code === 'INVALID_PARAMS')
      throw new OrchError(err.code, err.message, { engine: pool.config.engine, poolId: pool.id });
    throw err;
  }
}

const GENERATION_ONLY = ['sampling', 'stop', 'responseFormat', 'tools', 'toolChoice'] as const;
const WIRE_NAMES: Record<(typeof GENERATION_ONLY)[number], string> = {
  sampling: 'sampling fields',
  stop: 'stop',
  responseFormat: 'response_format',
  tools: 'tools',
  toolChoice: 'tool_choice',
};

function checkPromptTokens(
  input: SubmitInput,
  counts: readonly number[],
  opts: { engine: PoolRuntime['config']['engine']; poolId: string },
): number {
  if (input.workload === 'embedding') {
    for (const [i, n] of counts.entries())
      if (n > input.ctx)
        throw new OrchError('INVALID_PARAMS', `inputs[${i}]: ${n} tokens exceed ctx (${input.ctx})`, opts);
    return counts.reduce((a, b) => a + b, 0);
  }
  const promptTokens = counts[0] ?? 0;
  if (promptTokens + input.maxTokens > input.ctx) {
    throw new OrchError(
      'INVALID_PARAMS',
      `max_tokens: prompt (${promptTokens} tokens) + max_tokens (${input.maxTokens}) exceeds ctx (${input.ctx})`,
      opts,
    );
  }
  return promptTokens;
}

/**
 * Tasks a new arrival of `priority` would wait behind: its own class, plus the share of lower
 * classes that weighted fairness interleaves before it (`lower: false` leaves those out).
 */
export function aheadOf(pool: PoolRuntime, priority: Priority, lower = true): number {
  return workAhead(pool, priority, lower).count;
}

/** Tasks ahead of an arrival and their summed cost in tokens (what they will occupy slots for). */
export function workAhead(
  pool: PoolRuntime,
  priority: Priority,
  lower = true,
): { count: number; cost: number } {
  const q = pool.queue;
  if (q.mode === 'fifo') return { count: q.size, cost: q.totalCost };
  const own = q.sizeOf(priority);
  let count = own;
  let cost = q.costOf(priority);
  const w = pool.weightOf(priority);
  for (const p of PRIORITIES) {
    if (p === priority) continue;
    const higher = PRIORITIES.indexOf(p) < PRIORITIES.indexOf(priority);
    if (!higher && !lower) continue;
    const size = q.sizeOf(p);
    if (size === 0) continue;
    const n = higher ? size : Math.min(size, Math.floor(((own + 1) * pool.weightOf(p)) / w));
    count += n;
    cost += (q.costOf(p) / size) * n;
  }
  return { count, cost };
}

/** Predicted start and finish of an arrival (ms from now). */
export function predictFor(
  pool: PoolRuntime,
  input: SubmitInput,
  cost: number,
  uncachedPrompt: number,
  lower = true,
): { startMs: number; finishMs: number } {
  const ahead = workAhead(pool, input.priority, lower);
  const startMs = pool.predictStartMs(ahead.count, ahead.count > 0 ? ahead.cost / ahead.count : cost);
  const serviceMs = pool.predictServiceMs(uncachedPrompt, input.expectedTokens ?? input.maxTokens) ?? 0;
  return { startMs, finishMs: startMs + serviceMs };
}

/** The 429 for a refused offer, with a backoff computed from the drain rate (SPEC §2.6). */
export function backpressureError(
  pool: PoolRuntime,
  refusal: { readonly reason: Extract<OfferResult<QueuedTask>, { kind: 'refused' }>['reason'] },
  priority: Priority,
): OrchError {
  const policy = pool.config.queue.fullPolicy;
  const backoffMs = pool.backoffMs();
  const code = policy === 'drop-lru' ? 'QUEUE_FULL_DROP_LRU' : 'ADMISSION_REJECT';
  const why =
    refusal.reason === 'priority-capacity'
      ? `the ${priority} queue of pool '${pool.id}' is full`
      : refusal.reason === 'no-lower-priority'
        ? `the queue of pool '${pool.id}' is full and holds no lower-priority work to shed`
        : `the queue of pool '${pool.id}' is full (${pool.queue.size}/${pool.queue.capacity})`;
  const work = workAhead(pool, priority);
  const ahead = work.count;
  const etaMs = pool.predictStartMs(ahead, ahead > 0 ? work.cost / ahead : 1);
  const headers: Record<string, string> = { 'X-Queue-Position': String(ahead) };
  if (Number.isFinite(etaMs)) headers['X-Queue-ETA-Ms'] = String(Math.ceil(etaMs));
  return new OrchError(code, `${why} (policy ${policy}); retry after ${backoffMs} ms`, {
    engine: pool.config.engine,
    poolId: pool.id,
    policyLabel: policy,
    retryAfterMs: backoffMs,
    headers,
  });
}

/** A quota refusal as the 429 envelope (SPEC §2.6, §3.3): the `reject` policy, with a real backoff. */
export function quotaError(pool: PoolRuntime, tenant: string, refusal: QuotaRefusal): OrchError {
  const retryAfterMs = refusal.kind === 'rps' ? refusal.retryAfterMs : pool.backoffMs();
  const what =
    refusal.kind === 'rps'
      ? `tenant '${tenant}' exceeds its rate quota of ${refusal.limit} tasks/s`
      : `tenant '${tenant}' already has ${refusal.limit} tasks queued or running (max_concurrent)`;
  return new OrchError('ADMISSION_REJECT', `${what}; retry after ${retryAfterMs} ms`, {
    engine: pool.config.engine,
    poolId: pool.id,
    policyLabel: 'reject',
    retryAfterMs,
  });
}

/** The session's budgets must cover the task (SPEC §3.6: "token budget" is a 400). */
export function checkBudget(
  pool: PoolRuntime,
  usage: SessionUsage,
  promptTokens: number,
  maxTokens: number,
): void {
  const short = admissionShortfall(usage, pool.config.budgets, pool.config.prices, promptTokens, maxTokens);
  if (!short) return;
  const fmt = (v: number) => (short.kind === 'cost' ? v.toFixed(4) : String(Math.ceil(v)));
  throw new OrchError(
    'INVALID_PARAMS',
    `session budget: the task needs ${fmt(short.need)} ${short.kind} but the session has ${fmt(short.left)} left`,
    { engine: pool.config.engine, poolId: pool.id },
  );
}
