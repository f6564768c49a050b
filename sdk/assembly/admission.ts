/* eslint-disable @typescript-eslint/no-unnecessary-type-assertion -- AssemblyScript: <i32>, <i64>, <f64> and <usize> are value conversions, not type assertions */
/**
 * The admission hook's snapshot and decision (ABI v1), mirroring
 * contracts/plugins/admission-snapshot.schema.json and admission-decision.schema.json.
 */
import { JsonArray, JsonNumber, JsonObject, JsonString, quote, formatNumber } from './json';

export class PluginInfo {
  id: string = '';
  version: string = '';
}

export class TaskInfo {
  task_id: string = '';
  session_id: string = '';
  workload: string = '';
  model_ref: string = '';
  engine: string = '';
  /** `interactive` or `batch`. */
  priority: string = '';
  prompt_tokens: f64 = 0;
  max_tokens: f64 = 0;
  /** -1 when the request gave none. */
  expected_tokens: f64 = -1;
  deadline_ms: f64 = 0;

  static fromJson(t: JsonObject): TaskInfo {
    const task = new TaskInfo();
    task.task_id = t.getString('task_id');
    task.session_id = t.getString('session_id');
    task.workload = t.getString('workload');
    task.model_ref = t.getString('model_ref');
    task.engine = t.getString('engine');
    task.priority = t.getString('priority');
    task.prompt_tokens = t.getNumber('prompt_tokens');
    task.max_tokens = t.getNumber('max_tokens');
    task.expected_tokens = t.getNumber('expected_tokens', -1);
    task.deadline_ms = t.getNumber('deadline_ms');
    return task;
  }

  /** The task as JSON again (`expected_tokens` only when given). */
  toJson(): JsonObject {
    const str = (v: string): JsonString => new JsonString(v);
    const num = (v: f64): JsonNumber => new JsonNumber(v);
    const task = new JsonObject()
      .set('task_id', str(this.task_id))
      .set('session_id', str(this.session_id))
      .set('workload', str(this.workload))
      .set('model_ref', str(this.model_ref))
      .set('engine', str(this.engine))
      .set('priority', str(this.priority))
      .set('prompt_tokens', num(this.prompt_tokens))
      .set('max_tokens', num(this.max_tokens));
    if (this.expected_tokens >= 0) task.set('expected_tokens', num(this.expected_tokens));
    return task.set('deadline_ms', num(this.deadline_ms));
  }
}

/** The tenant's admissions in the 60 s before `now_ms`. */
export class TenantUsage {
  id: string = '';
  tokens_last_minute: f64 = 0;
  tasks_last_minute: f64 = 0;
}

export class PoolInfo {
  id: string = '';
  engine: string = '';
  queue_depth: f64 = 0;
  queue_capacity: f64 = 0;
}

/** What an adjustment may set; outside them the host treats the decision as malformed. */
export class Bounds {
  priorities: string[] = [];
  weight_min: f64 = 0;
  weight_max: f64 = 0;

  allowsPriority(p: string): bool {
    return this.priorities.includes(p);
  }

  clampWeight(w: f64): f64 {
    return Math.min(this.weight_max, Math.max(this.weight_min, w));
  }
}

export class AdmissionSnapshot {
  abi: i32 = 1;
  hook: string = 'admission';
  /** The orchestrator's clock (Unix epoch ms): the only clock a plugin has. */
  now_ms: f64 = 0;
  plugin: PluginInfo = new PluginInfo();
  /** The plugin's configured params (validated against its manifest at load). */
  params: JsonObject = new JsonObject();
  task: TaskInfo = new TaskInfo();
  tenant: TenantUsage = new TenantUsage();
  pool: PoolInfo = new PoolInfo();
  bounds: Bounds = new Bounds();

  static fromJson(o: JsonObject): AdmissionSnapshot {
    const s = new AdmissionSnapshot();
    s.abi = <i32>o.getNumber('abi', 1);
    s.hook = o.getString('hook');
    s.now_ms = o.getNumber('now_ms');
    const p = o.getObject('plugin');
    s.plugin.id = p.getString('id');
    s.plugin.version = p.getString('version');
    s.params = o.getObject('params');
    s.task = TaskInfo.fromJson(o.getObject('task'));
    const u = o.getObject('tenant');
    s.tenant.id = u.getString('id');
    s.tenant.tokens_last_minute = u.getNumber('tokens_last_minute');
    s.tenant.tasks_last_minute = u.getNumber('tasks_last_minute');
    const q = o.getObject('pool');
    s.pool.id = q.getString('id');
    s.pool.engine = q.getString('engine');
    s.pool.queue_depth = q.getNumber('queue_depth');
    s.pool.queue_capacity = q.getNumber('queue_capacity');
    const b = o.getObject('bounds');
    const list = b.get('priorities');
    if (list != null) {
      const arr = list.asArray();
      if (arr != null)
        for (let i = 0; i < arr.items.length; i++) s.bounds.priorities.push(arr.items[i].asString());
    }
    s.bounds.weight_min = b.getNumber('weight_min');
    s.bounds.weight_max = b.getNumber('weight_max');
    return s;
  }

  /** The snapshot as JSON again (every field of the schema; `expected_tokens` only when given). */
  toJson(): JsonObject {
    const str = (v: string): JsonString => new JsonString(v);
    const num = (v: f64): JsonNumber => new JsonNumber(v);
    const task = this.task.toJson();
    const priorities = new JsonArray();
    for (let i = 0; i < this.bounds.priorities.length; i++)
      priorities.items.push(str(this.bounds.priorities[i]));
    return new JsonObject()
      .set('abi', num(<f64>this.abi))
      .set('hook', str(this.hook))
      .set('now_ms', num(this.now_ms))
      .set('plugin', new JsonObject().set('id', str(this.plugin.id)).set('version', str(this.plugin.version)))
      .set('params', this.params)
      .set('task', task)
      .set(
        'tenant',
        new JsonObject()
          .set('id', str(this.tenant.id))
          .set('tokens_last_minute', num(this.tenant.tokens_last_minute))
          .set('tasks_last_minute', num(this.tenant.tasks_last_minute)),
      )
      .set(
        'pool',
        new JsonObject()
          .set('id', str(this.pool.id))
          .set('engine', str(this.pool.engine))
          .set('queue_depth', num(this.pool.queue_depth))
          .set('queue_capacity', num(this.pool.queue_capacity)),
      )
      .set(
        'bounds',
        new JsonObject()
          .set('priorities', priorities)
          .set('weight_min', num(this.bounds.weight_min))
          .set('weight_max', num(this.bounds.weight_max)),
      );
  }
}

/** Refusal codes a plugin may answer with (SPEC §2.5). */
export class RefusalCode {
  static readonly ADMISSION_REJECT: string = 'ADMISSION_REJECT';
  static readonly FORBIDDEN: string = 'FORBIDDEN';
  static readonly INVALID_PARAMS: string = 'INVALID_PARAMS';
  static readonly DEADLINE_UNMET: string = 'DEADLINE_UNMET';
  static readonly POOL_UNAVAILABLE: string = 'POOL_UNAVAILABLE';
}

export class AdmissionDecision {
  decision: string = 'accept';
  code: string = '';
  message: string = '';
  /** -1: none. */
  retry_after_ms: f64 = -1;
  /** "": unchanged. */
  priority: string = '';
  /** 0: unchanged. */
  weight: f64 = 0;

  /** The built-in policy's answer: admit unchanged. */
  static accept(): AdmissionDecision {
    return new AdmissionDecision();
  }

  /** A typed refusal: the client gets the error envelope with this code and message. */
  static refuse(code: string, message: string, retryAfterMs: f64 = -1): AdmissionDecision {
    const d = new AdmissionDecision();
    d.decision = 'refuse';
    d.code = code;
    d.message = message;
    d.retry_after_ms = retryAfterMs;
    return d;
  }

  /** Changes priority and/or weight ("" / 0 leave them); both must be within the snapshot's bounds. */
  static adjust(priority: string, weight: f64 = 0): AdmissionDecision {
    const d = new AdmissionDecision();
    d.decision = 'adjust';
    d.priority = priority;
    d.weight = weight;
    return d;
  }

  toJson(): string {
    let out = '{"decision":' + quote(this.decision);
    if (this.decision == 'refuse') {
      out += ',"code":' + quote(this.code) + ',"message":' + quote(this.message);
      if (this.retry_after_ms >= 0)
        out += ',"retry_after_ms":' + formatNumber(Math.floor(this.retry_after_ms));
    } else if (this.decision == 'adjust') {
      if (this.priority.length > 0) out += ',"priority":' + quote(this.priority);
      if (this.weight > 0) out += ',"weight":' + formatNumber(this.weight);
    }
    return out + '}';
  }
}
