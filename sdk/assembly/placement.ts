/* eslint-disable @typescript-eslint/no-unnecessary-type-assertion -- AssemblyScript: <i32>, <i64>, <f64> and <usize> are value conversions, not type assertions */
/**
 * The placement hook's snapshot and decision (ABI v1), mirroring
 * contracts/plugins/placement-snapshot.schema.json and placement-decision.schema.json.
 */
import { PluginInfo, TaskInfo } from './admission';
import { JsonArray, JsonBool, JsonNumber, JsonObject, JsonString, formatNumber, quote } from './json';

/** One replica of the task's replica set. */
export class ReplicaInfo {
  /** `<pool>-r<n>`, unique in the fleet. */
  id: string = '';
  pool_id: string = '';
  /** `local`, or the pool-managerd node it runs on. */
  host: string = '';
  /** Takes work now; a task placed only on replicas that are not ready waits for them. */
  ready: bool = false;
  slots_total: f64 = 0;
  in_flight: f64 = 0;
  /** Tasks queued in its pool. */
  queue_depth: f64 = 0;
  /** GPUs as configured: an index such as `0`, or a UUID such as `GPU-…`; empty on CPU. */
  devices: string[] = [];
  topology_cost: f64 = 0;
  /** The task's session ran its last turn here (its KV is warm). */
  session: bool = false;

  /** Whether the replica runs on GPU `device` (as written in the configuration). */
  onDevice(device: string): bool {
    return this.devices.includes(device);
  }
}

export class TenantRef {
  id: string = '';
}

export class PlacementSnapshot {
  abi: i32 = 1;
  hook: string = 'placement';
  now_ms: f64 = 0;
  plugin: PluginInfo = new PluginInfo();
  params: JsonObject = new JsonObject();
  task: TaskInfo = new TaskInfo();
  tenant: TenantRef = new TenantRef();
  /** Every replica of the replica set, across its pools and hosts, in configuration order. */
  replicas: ReplicaInfo[] = [];

  static fromJson(o: JsonObject): PlacementSnapshot {
    const s = new PlacementSnapshot();
    s.abi = <i32>o.getNumber('abi', 1);
    s.hook = o.getString('hook');
    s.now_ms = o.getNumber('now_ms');
    const p = o.getObject('plugin');
    s.plugin.id = p.getString('id');
    s.plugin.version = p.getString('version');
    s.params = o.getObject('params');
    s.task = TaskInfo.fromJson(o.getObject('task'));
    s.tenant.id = o.getObject('tenant').getString('id');
    const items = o.getArray('replicas').items;
    for (let i = 0; i < items.length; i++) {
      const ro = items[i].asObject();
      if (ro == null) continue;
      const r = new ReplicaInfo();
      r.id = ro.getString('id');
      r.pool_id = ro.getString('pool_id');
      r.host = ro.getString('host');
      r.ready = ro.getBool('ready');
      r.slots_total = ro.getNumber('slots_total');
      r.in_flight = ro.getNumber('in_flight');
      r.queue_depth = ro.getNumber('queue_depth');
      r.devices = ro.getStrings('devices');
      r.topology_cost = ro.getNumber('topology_cost');
      r.session = ro.getBool('session');
      s.replicas.push(r);
    }
    return s;
  }

  /** The snapshot as JSON again (every field of the schema). */
  toJson(): JsonObject {
    const str = (v: string): JsonString => new JsonString(v);
    const num = (v: f64): JsonNumber => new JsonNumber(v);
    const replicas = new JsonArray();
    for (let i = 0; i < this.replicas.length; i++) {
      const r = this.replicas[i];
      const devices = new JsonArray();
      for (let j = 0; j < r.devices.length; j++) devices.items.push(str(r.devices[j]));
      replicas.items.push(
        new JsonObject()
          .set('id', str(r.id))
          .set('pool_id', str(r.pool_id))
          .set('host', str(r.host))
          .set('ready', new JsonBool(r.ready))
          .set('slots_total', num(r.slots_total))
          .set('in_flight', num(r.in_flight))
          .set('queue_depth', num(r.queue_depth))
          .set('devices', devices)
          .set('topology_cost', num(r.topology_cost))
          .set('session', new JsonBool(r.session)),
      );
    }
    return new JsonObject()
      .set('abi', num(<f64>this.abi))
      .set('hook', str(this.hook))
      .set('now_ms', num(this.now_ms))
      .set('plugin', new JsonObject().set('id', str(this.plugin.id)).set('version', str(this.plugin.version)))
      .set('params', this.params)
      .set('task', this.task.toJson())
      .set('tenant', new JsonObject().set('id', str(this.tenant.id)))
      .set('replicas', replicas);
  }
}

export class PlacementDecision {
  decision: string = 'default';
  /** Whether `allowed` filters (an empty filter: no replica may run the task). */
  filtered: bool = false;
  allowed: string[] = [];
  scoreIds: string[] = [];
  scoreValues: f64[] = [];

  /** The built-in placement decides (load, session affinity, topology). */
  static builtIn(): PlacementDecision {
    return new PlacementDecision();
  }

  /**
   * The task runs only on these replicas (ids from the snapshot) and waits for one of them; an
   * empty list refuses the submission (503 POOL_UNAVAILABLE, not retriable).
   */
  static only(replicaIds: string[]): PlacementDecision {
    const d = new PlacementDecision();
    d.decision = 'place';
    d.filtered = true;
    d.allowed = replicaIds;
    return d;
  }

  /** Ranks replicas: among those with a free slot, the highest score wins; unnamed ones score 0. */
  static prefer(replicaId: string, score: f64): PlacementDecision {
    const d = new PlacementDecision();
    d.decision = 'place';
    return d.score(replicaId, score);
  }

  /** Adds (or replaces) one replica's score. */
  score(replicaId: string, score: f64): PlacementDecision {
    this.decision = 'place';
    const at = this.scoreIds.indexOf(replicaId);
    if (at >= 0) this.scoreValues[at] = score;
    else {
      this.scoreIds.push(replicaId);
      this.scoreValues.push(score);
    }
    return this;
  }

  toJson(): string {
    let out = '{"decision":' + quote(this.decision);
    if (this.decision == 'place') {
      if (this.filtered) {
        out += ',"allow":[';
        for (let i = 0; i < this.allowed.length; i++) out += (i > 0 ? ',' : '') + quote(this.allowed[i]);
        out += ']';
      }
      if (this.scoreIds.length > 0) {
        out += ',"scores":{';
        for (let i = 0; i < this.scoreIds.length; i++)
          out += (i > 0 ? ',' : '') + quote(this.scoreIds[i]) + ':' + formatNumber(this.scoreValues[i]);
        out += '}';
      }
    }
    return out + '}';
  }
}
