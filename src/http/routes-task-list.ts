/**
 * `GET /v1/tasks` (data plane): the live and recently ended tasks a key may see, for dashboards
 * and the operator console. Read from the orchestrator's in-memory task table only, so polling it
 * costs no journal or store access.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Principal } from '../domain/submit.js';
import { OrchError } from '../errors/orch-error.js';
import type { Orchestrator } from '../orchestrator/orchestrator.js';
import type { TaskView } from '../orchestrator/task-record.js';
import type { EndedTask } from '../orchestrator/task-table.js';
import type { Authenticator } from './auth.js';
import type { components, operations } from './generated/data.js';
import type { OpenApiDocument } from './openapi.js';
import { queryParser } from './query-validator.js';

export type TaskSummary = components['schemas']['TaskSummary'];
export type TaskListQuery = NonNullable<operations['listTasks']['parameters']['query']>;

export interface TaskListRoutesOptions {
  readonly orchestrator: Orchestrator;
  readonly auth: Authenticator;
  /** The data-plane document: the query parameters are validated against its `listTasks`. */
  readonly document: OpenApiDocument;
}

type Listed = TaskView | EndedTask;

const isRunning = (t: Listed): boolean => t.state.kind === 'dispatched' || t.state.kind === 'streaming';

export function registerTaskListRoutes(app: FastifyInstance, o: TaskListRoutesOptions): void {
  const parseQuery = queryParser<TaskListQuery>(o.document, '/v1/tasks');

  /** A control key sees every tenant's tasks; a data key its own tenant's. */
  const who = (req: FastifyRequest): { principal: Principal; allTenants: boolean } => {
    try {
      return { principal: o.auth.authenticate(req.headers.authorization, 'control'), allTenants: true };
    } catch (err) {
      if (err instanceof OrchError && err.code === 'FORBIDDEN')
        return { principal: o.auth.authenticate(req.headers.authorization, 'data'), allTenants: false };
      throw err;
    }
  };

  const summary = (t: Listed): TaskSummary => {
    const queued = t.state.kind === 'queued';
    const pool = queued ? o.orchestrator.pools.find((p) => p.id === t.poolId) : undefined;
    const position = pool?.queue.positionOf(t.spec.taskId);
    // A pool with no ready slot predicts no start: omitted rather than a made-up number.
    const predicted = pool && position !== undefined ? pool.predictStartMs(position) : undefined;
    const state = t.state;
    return {
      task_id: t.spec.taskId,
      tenant: t.spec.tenant,
      session_id: t.spec.sessionId,
      pool_id: t.poolId,
      model_ref: t.spec.modelRef,
      priority: t.spec.priority,
      state: state.kind,
      ...(state.kind === 'failed' || state.kind === 'evicted' ? { error_code: state.code } : {}),
      ...(t.replicaId === undefined ? {} : { replica_id: t.replicaId }),
      ...(position === undefined ? {} : { queue_position: position }),
      ...(predicted === undefined || !Number.isFinite(predicted)
        ? {}
        : { predicted_start_ms: Math.max(0, Math.ceil(predicted)) }),
      deadline_ms: t.spec.deadlineMs,
      accepted_at_ms: Math.floor(t.spec.acceptedAtMs),
      ...(t.dispatchedAtMs === undefined ? {} : { started_at_ms: Math.floor(t.dispatchedAtMs) }),
      ...(t.finishedAtMs === undefined ? {} : { finished_at_ms: Math.floor(t.finishedAtMs) }),
      tokens_out: t.tokensOut,
    };
  };

  app.get('/v1/tasks', async (req) => {
    const { principal, allTenants } = who(req);
    const q = parseQuery(req.query);
    const limit = q.limit ?? 100;
    const wanted = (t: Listed): boolean =>
      (allTenants || t.spec.tenant === principal.tenant) && (q.pool === undefined || t.poolId === q.pool);

    // Only as many tasks as the page holds are looked at past the filters: a deep queue costs a
    // listing its page, not the whole table.
    const out: TaskSummary[] = [];
    if (q.state !== 'ended')
      for (const t of o.orchestrator.liveTasks()) {
        if (out.length >= limit) break;
        if (!wanted(t)) continue;
        if (q.state === 'queued' && t.state.kind !== 'queued') continue;
        if (q.state === 'running' && !isRunning(t)) continue;
        out.push(summary(t));
      }
    if (q.state === undefined || q.state === 'ended')
      for (const t of o.orchestrator.endedTasks()) {
        if (out.length >= limit) break;
        if (wanted(t)) out.push(summary(t));
      }
    return { tasks: out };
  });
}
