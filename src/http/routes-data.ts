/** OrchQueue v1 data plane (SPEC §2): thin handlers over the orchestrator. */
import { setMaxListeners } from 'node:events';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { SubmitInput } from '../domain/submit.js';
import { OrchError } from '../errors/orch-error.js';
import type { OrchMetrics } from '../metrics/metrics.js';
import type { Orchestrator, SessionView } from '../orchestrator/orchestrator.js';
import type { Authenticator } from './auth.js';
import type { Logger } from '../util/logger.js';
import type { OpenApiDocument, TaskRequest, TaskRequestValidator } from './openapi.js';
import { queryParser } from './query-validator.js';
import type { operations } from './generated/data.js';

type SessionListQuery = NonNullable<operations['listSessions']['parameters']['query']>;
import { relay, resumeAfter } from './sse.js';
import { generationFieldsOf } from './generation-fields.js';
import { budgetHeaders } from './budget-headers.js';

export interface DataRoutesOptions {
  readonly orchestrator: Orchestrator;
  readonly auth: Authenticator;
  readonly metrics: OrchMetrics;
  readonly validateTaskRequest: TaskRequestValidator;
  readonly cancelOnDisconnect: boolean;
  readonly heartbeatMs: number;
  readonly logger: Logger;
  /** The data-plane document: query parameters are validated against it. */
  readonly document: OpenApiDocument;
}

export function toSubmitInput(body: TaskRequest): SubmitInput {
  return {
    taskId: body.task_id,
    sessionId: body.session_id,
    workload: body.workload,
    modelRef: body.model_ref,
    engine: body.engine,
    ctx: body.ctx,
    priority: body.priority,
    seed: body.seed,
    determinism: body.determinism ?? 'strict',
    samplerProfileVersion: body.sampler_profile_version ?? 'v1',
    prompt: body.prompt,
    inputs: body.inputs,
    ...generationFieldsOf(body),
    maxTokens: body.max_tokens,
    deadlineMs: body.deadline_ms,
    expectedTokens: body.expected_tokens,
    kvHint: body.kv_hint,
    override: body.override,
  };
}

type IdParams = { Params: { id: string } };

export function registerDataRoutes(app: FastifyInstance, o: DataRoutesOptions): void {
  const parseSessionsQuery = queryParser<SessionListQuery>(o.document, '/v1/sessions');
  const principal = (req: FastifyRequest) => o.auth.authenticate(req.headers.authorization, 'data');
  // The orchestrator has drained by the time the server closes: a stream still open belongs to
  // a task kept queued for the next start, and ends without a terminal event.
  const stopping = new AbortController();
  setMaxListeners(0, stopping.signal); // one listener per open stream
  app.addHook('preClose', (done) => {
    stopping.abort();
    done();
  });

  app.post('/v1/tasks', async (req, reply) => {
    let who: ReturnType<typeof principal>;
    let checked: ReturnType<TaskRequestValidator>;
    try {
      who = principal(req);
      checked = o.validateTaskRequest(req.body);
      if (!checked.ok) throw new OrchError('INVALID_PARAMS', `${checked.field}: ${checked.message}`);
    } catch (err) {
      // Refusals before the orchestrator sees the task (credential, schema) are admission
      // decisions too: one log line each (SPEC §12).
      if (err instanceof OrchError)
        o.logger.info(
          { event: 'admission.rejected', correlation_id: req.correlationId, code: err.code, stage: 'edge' },
          err.message,
        );
      throw err;
    }
    const accepted = await o.orchestrator.submit(who, toSubmitInput(checked.value), req.correlationId);
    void reply.headers(budgetHeaders(accepted.budget));
    // An identical resubmission of a used id replays its acceptance: 200 once the task ended.
    return reply.code(accepted.ended === true ? 200 : 202).send({
      task_id: accepted.taskId,
      queue_position: accepted.queuePosition,
      predicted_start_ms: accepted.predictedStartMs,
      backoff_ms: accepted.backoffMs,
    });
  });

  app.get<IdParams>('/v1/tasks/:id/stream', async (req, reply) => {
    const task = o.orchestrator.task(principal(req), req.params.id);
    // Refusals must come before the hijack: afterwards the error handler cannot answer.
    const afterSeq = resumeAfter(task.log, req.headers['last-event-id'], task.spec.taskId);
    reply.hijack();
    o.metrics.inc('sse_clients_connected', {});
    try {
      await relay(reply.raw, {
        log: task.log,
        afterSeq,
        // The stream belongs to the task: its events join the enqueue's logs and traces.
        headers: { 'X-Correlation-Id': task.spec.correlationId },
        heartbeatMs: o.heartbeatMs,
        signal: stopping.signal,
        onDisconnect: () => {
          // The relay has left the log by now: other listeners are other readers still watching.
          // A shutdown's closed sockets are not a client leaving.
          if (
            o.cancelOnDisconnect &&
            !o.orchestrator.closing &&
            !task.terminal &&
            task.log.listenerCount === 0
          )
            o.orchestrator.cancel(principal(req), task.spec.taskId);
        },
      });
    } finally {
      o.metrics.dec('sse_clients_connected', {});
    }
  });

  app.post<IdParams>('/v1/tasks/:id/cancel', async (req, reply) => {
    o.orchestrator.cancel(principal(req), req.params.id);
    await o.orchestrator.committed();
    return reply.code(204).send();
  });

  app.get<{ Querystring: Record<string, unknown> }>('/v1/sessions', async (req) => {
    const { limit = 100 } = parseSessionsQuery(req.query);
    return { sessions: o.orchestrator.sessionsOf(principal(req), limit).map(sessionBody) };
  });

  app.get<IdParams>('/v1/sessions/:id', async (req) =>
    sessionBody(o.orchestrator.session(principal(req), req.params.id)),
  );

  app.delete<IdParams>('/v1/sessions/:id', async (req, reply) => {
    o.orchestrator.deleteSession(principal(req), req.params.id);
    await o.orchestrator.committed();
    return reply.code(204).send();
  });
}

function sessionBody(s: SessionView) {
  return {
    session_id: s.sessionId,
    ttl_ms_remaining: s.ttlMsRemaining,
    turns: s.turns,
    kv_bytes: s.kvBytes,
    kv_warmth: s.kvWarmth,
    ...(s.replicaId === undefined ? {} : { replica_id: s.replicaId }),
    tokens_used: s.usage.tokens,
    time_used_ms: Math.floor(s.usage.wallMs),
    cost_used: s.usage.cost,
    ...(s.budget.tokens === undefined ? {} : { tokens_remaining: s.budget.tokens }),
    ...(s.budget.wallMs === undefined ? {} : { time_remaining_ms: Math.floor(s.budget.wallMs) }),
    ...(s.budget.cost === undefined ? {} : { cost_remaining: s.budget.cost }),
  };
}
