/**
 * The OpenAI-compatible surface (SPEC §17 §2.7) as a Fastify plugin: `/v1/chat/completions`,
 * `/v1/completions`, `/v1/embeddings`, `/v1/models[/{id}]` on the data plane's port and keys.
 * Every request is an OrchQueue task — same admission, quotas, budgets, fairness, deadlines,
 * placement, metrics and logs — streamed from the admission request itself. Its scope: these
 * routes render errors in OpenAI's shape; everything else keeps the OrchQueue envelope.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { CatalogService } from '../catalog/catalog-service.js';
import type { EndData, ErrorData, TaskEvent } from '../domain/events.js';
import type { Principal } from '../domain/submit.js';
import { OrchError } from '../errors/orch-error.js';
import type { Orchestrator } from '../orchestrator/orchestrator.js';
import type { PoolRuntime } from '../orchestrator/pool-runtime.js';
import { admitsWork } from '../orchestrator/replica-set.js';
import type { EventLogReader } from '../tasks/event-log.js';
import type { Logger } from '../util/logger.js';
import type { Redactor } from '../util/redact.js';
import type { Authenticator } from './auth.js';
import { budgetHeaders } from './budget-headers.js';
import { errorHeaders, toOrchError } from './error-handler.js';
import { openAiErrorBody } from './openai/openai-error.js';
import {
  modelOf,
  toOpenAiTask,
  type OpenAiDefaults,
  type OpenAiOperation,
  type OpenAiTask,
  type ResolvedModel,
} from './openai/openai-request.js';
import {
  base64Vector,
  chunkBody,
  textChunkEncoder,
  completionBody,
  systemFingerprint,
  usageOf,
  type ResponseHead,
} from './openai/openai-response.js';

export interface OpenAiRoutesOptions {
  readonly orchestrator: Orchestrator;
  readonly auth: Authenticator;
  readonly catalog?: CatalogService | undefined;
  readonly defaults: OpenAiDefaults;
  readonly logger: Logger;
  readonly redactor: Redactor;
}

/** A task's events from the start, then live (`EventLog.follow`); returns the unsubscribe. */
function follow(log: EventLogReader, on: (e: TaskEvent) => void): () => void {
  return log.follow(0, (e) => on(e.event));
}

/** The pools serving `model`: a served model id or digest, a catalog id, or a catalog tag. */
async function poolsFor(
  pools: readonly PoolRuntime[],
  catalog: CatalogService | undefined,
  model: string,
): Promise<PoolRuntime[]> {
  const direct = pools.filter((p) => p.config.model.id === model || p.config.model.digest === model);
  if (direct.length > 0 || !catalog) return direct;
  for (const ref of [model, `tag:${model}`]) {
    const record = await catalog.resolveRef(ref).catch(() => undefined);
    if (!record) continue;
    const served = pools.filter(
      (p) => p.config.model.id === record.id || (record.digest !== '' && p.modelDigest() === record.digest),
    );
    if (served.length > 0) return served;
  }
  return [];
}

export const openAiRoutes: FastifyPluginAsync<OpenAiRoutesOptions> = async (app: FastifyInstance, o) => {
  app.setErrorHandler((err, req, reply) => {
    const orch = toOrchError(err);
    if (orch.code === 'INTERNAL')
      o.logger.error({ err, correlation_id: req.correlationId, url: req.url }, 'internal error');
    const headers = errorHeaders(orch);
    // OpenAI's clients wait exactly this long before retrying (`retry-after-ms`, openai-node/python).
    if (headers['X-Backoff-Ms'] !== undefined) headers['retry-after-ms'] = headers['X-Backoff-Ms'];
    void reply
      .code(orch.httpStatus)
      .headers(headers)
      .send(openAiErrorBody(orch, o.redactor.scrub(orch.message)));
  });

  const principal = (req: FastifyRequest): Principal =>
    o.auth.authenticate(req.headers.authorization, 'data');

  async function resolve(model: string): Promise<ResolvedModel> {
    const pools = await poolsFor(o.orchestrator.pools, o.catalog, model);
    // The first configured pool that takes work decides the engine; admission picks the member.
    const pool = pools.find(admitsWork) ?? pools[0];
    if (!pool) throw new OrchError('INVALID_PARAMS', `model: unknown model '${model}'`);
    return { modelRef: pool.config.model.id, engine: pool.config.engine, ctx: pool.config.ctx };
  }

  async function serve(op: OpenAiOperation, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const who = principal(req);
    let t: OpenAiTask;
    try {
      t = toOpenAiTask(op, req.body, req.headers, await resolve(modelOf(req.body)), o.defaults);
    } catch (err) {
      if (err instanceof OrchError)
        o.logger.info(
          { event: 'admission.rejected', correlation_id: req.correlationId, code: err.code, stage: 'edge' },
          err.message,
        );
      throw err;
    }
    const accepted = await o.orchestrator.submit(who, t.input, req.correlationId);
    const task = o.orchestrator.task(who, accepted.taskId);
    const pool = o.orchestrator.pools.find((p) => p.id === task.poolId);
    const head: ResponseHead = {
      id: `${op === 'chat' ? 'chatcmpl' : op === 'completion' ? 'cmpl' : 'embd'}-${accepted.taskId}`,
      created: Math.floor(Date.now() / 1000),
      model: t.model,
      systemFingerprint: systemFingerprint(pool?.engineVersion() ?? 'unknown', pool?.modelDigest()),
    };
    const headers = { 'X-LLorch-Task-Id': accepted.taskId, ...budgetHeaders(accepted.budget) };
    // A client that goes away cancels its task, as OpenAI clients expect: the engine slot is freed.
    const cancel = (): void => {
      if (!o.orchestrator.task(who, accepted.taskId).terminal) o.orchestrator.cancel(who, accepted.taskId);
    };
    if (t.stream)
      return streamTask(op, t, task.log, head, headers, reply, cancel, {
        promptTokens: task.spec.promptTokens,
        queued: task.state.kind === 'queued',
      });
    const outcome = await untilTerminal(task.log, reply, cancel);
    if (outcome.kind === 'gone') return reply;
    if (outcome.kind === 'error') throw taskError(outcome.error);
    void reply.headers(headers);
    if (op === 'embedding') return embeddingBody(t, outcome.end, task.spec.promptTokens);
    return completionBody(op, head, outcome.text, outcome.end, task.spec.promptTokens);
  }

  app.post('/v1/chat/completions', (req, reply) => serve('chat', req, reply));
  app.post('/v1/completions', (req, reply) => serve('completion', req, reply));
  app.post('/v1/embeddings', (req, reply) => serve('embedding', req, reply));

  app.get('/v1/models', async (req) => {
    principal(req);
    return { object: 'list', data: await models() };
  });
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (req) => {
    principal(req);
    const pools = await poolsFor(o.orchestrator.pools, o.catalog, req.params.id);
    const listed = await models();
    const m =
      listed.find((x) => x.id === req.params.id) ??
      listed.find((x) => pools.some((p) => p.config.model.id === x.id));
    if (!m) throw new OrchError('NOT_FOUND', `model '${req.params.id}' not found`);
    return req.params.id === m.id ? m : { ...m, id: req.params.id };
  });

  /** Every model a pool serves, once, with what a client needs to size requests. */
  async function models(): Promise<Record<string, unknown>[]> {
    const byId = new Map<string, PoolRuntime[]>();
    for (const p of o.orchestrator.pools)
      byId.set(p.config.model.id, [...(byId.get(p.config.model.id) ?? []), p]);
    const out: Record<string, unknown>[] = [];
    for (const [id, pools] of byId) {
      const record = await o.catalog?.find(id);
      if (record?.state === 'Retired') continue;
      out.push({
        id,
        object: 'model',
        created: Math.floor((record?.createdMs ?? 0) / 1000),
        owned_by: 'llama-orch',
        max_model_len: Math.max(...pools.map((p) => p.config.ctx)),
        engines: [...new Set(pools.map((p) => p.config.engine))],
        ready: pools.some(admitsWork),
      });
    }
    return out;
  }
};

type Outcome =
  { kind: 'end'; end: EndData; text: string } | { kind: 'error'; error: ErrorData } | { kind: 'gone' };

/** Waits for the task's terminal event, collecting its text; a client that leaves cancels it. */
function untilTerminal(log: EventLogReader, reply: FastifyReply, cancel: () => void): Promise<Outcome> {
  return new Promise((resolve) => {
    let text = '';
    let done = false;
    const onClose = (): void => {
      if (done || reply.raw.writableFinished) return;
      done = true;
      unsubscribe();
      cancel();
      resolve({ kind: 'gone' });
    };
    reply.raw.once('close', onClose);
    let unsubscribe: () => void = () => undefined;
    const finish = (r: Outcome): void => {
      if (done) return;
      done = true;
      reply.raw.off('close', onClose);
      unsubscribe();
      resolve(r);
    };
    unsubscribe = follow(log, (e) => {
      if (e.type === 'token') text += e.data.t;
      else if (e.type === 'end') finish({ kind: 'end', end: e.data, text });
      else if (e.type === 'error') finish({ kind: 'error', error: e.data });
    });
    if (done) unsubscribe();
  });
}

/** A task's failure as the refusal it is (its code keeps its HTTP status). */
function taskError(e: ErrorData): OrchError {
  return new OrchError(e.code, e.message, {
    ...(e.engine === undefined ? {} : { engine: e.engine }),
    ...(e.retriable === undefined ? {} : { retriable: e.retriable }),
  });
}

function embeddingBody(t: OpenAiTask, end: EndData, promptTokens: number): Record<string, unknown> {
  const usage = usageOf(end, promptTokens);
  return {
    object: 'list',
    model: t.model,
    data: (end.embeddings ?? []).map((v, index) => ({
      object: 'embedding',
      index,
      embedding: t.encoding === 'base64' ? base64Vector(v) : v,
    })),
    usage: { prompt_tokens: usage.prompt_tokens, total_tokens: usage.prompt_tokens },
  };
}

/**
 * Streams the task as OpenAI chunks: the role first, a delta per engine chunk, the finish reason,
 * the usage chunk when asked for, then `[DONE]`. A failure after the stream began is sent as
 * `data: {"error": …}` (what OpenAI clients raise), then `[DONE]`.
 */
/** How long a running task's stream may hold its headers back for its first chunk. */
const HEADERS_WAIT_MS = 250;

function streamTask(
  op: OpenAiOperation,
  t: OpenAiTask,
  log: EventLogReader,
  head: ResponseHead,
  headers: Record<string, string>,
  reply: FastifyReply,
  cancel: () => void,
  at: { readonly promptTokens: number; readonly queued: boolean },
): Promise<void> {
  if (op === 'embedding') throw new OrchError('INVALID_PARAMS', 'stream: embeddings are not streamed');
  const { promptTokens } = at;
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
    'X-Correlation-Id': String(reply.getHeader('X-Correlation-Id') ?? ''),
    ...headers,
  });
  // The headers leave with the first chunk, in the same write (a chat stream's role chunk is
  // written at once), when that chunk is near: a queued task's client gets them at once, so it
  // knows it was admitted while it waits, and a slow first token does not hold them long.
  let early: NodeJS.Timeout | undefined;
  if (op !== 'chat') {
    if (at.queued) res.flushHeaders();
    else {
      early = setTimeout(() => res.flushHeaders(), HEADERS_WAIT_MS);
      early.unref();
    }
  }
  const write = (frame: string): void => {
    if (early !== undefined) {
      clearTimeout(early);
      early = undefined;
    }
    res.write(frame);
  };
  const send = (body: unknown): void => write(`data: ${JSON.stringify(body)}\n\n`);
  return new Promise<void>((resolve) => {
    let done = false;
    let pending = '';
    let scheduled = false;
    const textChunk = textChunkEncoder(op, head, t.includeUsage);
    const flush = (): void => {
      scheduled = false;
      if (pending === '' || done) return;
      write(`data: ${textChunk(pending)}\n\n`);
      pending = '';
    };
    const end = (): void => {
      done = true;
      clearTimeout(early);
      unsubscribe();
      res.off('close', onClose);
      res.end();
      resolve();
    };
    const onClose = (): void => {
      if (done) return;
      done = true;
      clearTimeout(early);
      unsubscribe();
      cancel();
      resolve();
    };
    res.on('close', onClose);
    if (op === 'chat') send(chunkBody(op, head, { kind: 'role' }, t.includeUsage));
    let unsubscribe: () => void = () => undefined;
    unsubscribe = follow(log, (e) => {
      if (done) return;
      if (e.type === 'token') {
        // The tokens of one engine chunk leave as one delta.
        pending += e.data.t;
        if (!scheduled) {
          scheduled = true;
          process.nextTick(flush);
        }
      } else if (e.type === 'end') {
        flush();
        if (e.data.tool_calls !== undefined && e.data.tool_calls.length > 0)
          send(chunkBody(op, head, { kind: 'tools', calls: e.data.tool_calls }, t.includeUsage));
        send(chunkBody(op, head, { kind: 'end', end: e.data }, t.includeUsage));
        if (t.includeUsage)
          send(chunkBody(op, head, { kind: 'usage', usage: usageOf(e.data, promptTokens) }, true));
        res.write('data: [DONE]\n\n');
        end();
      } else if (e.type === 'error') {
        flush();
        // As vLLM does: the error event, then the end of the stream as usual.
        send(openAiErrorBody(taskError(e.data)));
        res.write('data: [DONE]\n\n');
        end();
      }
    });
    if (done) unsubscribe();
  });
}
