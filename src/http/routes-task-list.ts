/**
 * `GET /v1/tasks` (data plane): the live and recently ended tasks a key may see, for dashboards
 * and the operator console. Read from the orchestrator's in-memory task table only, so polling it
 * costs no journal or store access.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Ajv, type ValidateFunction } from 'ajv';
import type { Principal } from '../domain/submit.js';
import { OrchError } from '../errors/orch-error.js';
import type { Orchestrator } from '../orchestrator/orchestrator.js';
import type { TaskView } from '../orchestrator/task-record.js';
import type { EndedTask } from '../orchestrator/task-table.js';
import type { Authenticator } from './auth.js';
import type { components, operations } from './generated/data.js';
import { errorField, type OpenApiDocument } from './openapi.js';

export type TaskSummary = components['schemas']['TaskSummary'];
export type TaskListQuery = NonNullable<operations['listTasks']['parameters']['query']>;

export interface TaskListRoutesOptions {
  readonly orchestrator: Orchestrator;
  readonly auth: Authenticator;
  /** The data-plane document: the query parameters are validated against its `listTasks`. */
  readonly document: OpenApiDocument;
}

interface QueryParameter {
  readonly name: string;
  readonly in: string;
  readonly schema?: Record<string, unknown>;
}

/**
 * The query schema of `GET /v1/tasks`, built from the operation's documented parameters: the
 * document stays the one place that says what a valid query is.
 */
function queryValidator(doc: OpenApiDocument): ValidateFunction {
  const op = doc.paths['/v1/tasks']?.['get'] as { parameters?: readonly QueryParameter[] } | undefined;
  const params = (op?.parameters ?? []).filter((p) => p.in === 'query');
  if (params.length === 0) throw new Error('data.yaml: GET /v1/tasks documents no query parameters');
  // Query values arrive as strings: coerced to the documented types; a repeated one stays an
  // array and fails its scalar schema.
  const ajv = new Ajv({ strict: false, coerceTypes: true, useDefaults: true, allErrors: false });
  return ajv.compile({
    type: 'object',
    properties: Object.fromEntries(params.map((p) => [p.name, p.schema ?? {}])),
  });
}

type Listed = TaskView | EndedTask;

const isRunning = (t: Listed): boolean => t.state.kind === 'dispatched' || t.state.kind === 'streaming';

export function registerTaskListRoutes(app: FastifyInstance, o: TaskListRoutesOptions): void {
  const validate = queryValidator(o.document);

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
    const query: Record<string, unknown> = { ...(req.query as Record<string, unknown>) };
    if (!validate(query)) {
      const e = validate.errors?.[0];
      throw new OrchError(
        'INVALID_PARAMS',
        e ? `${errorField(e)}: ${e.message ?? e.keyword}` : 'invalid query',
      );
    }
    const q = query as TaskListQuery;
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
