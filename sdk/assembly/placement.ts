/**
 * The placement hook (ABI v1). The snapshot's classes are generated from
 * contracts/plugins/placement-snapshot.schema.json (sdk/assembly/generated/, `npm run gen`), the
 * decision's values from placement-decision.schema.json; this file adds the methods and the
 * decision builders.
 */
import { JsonObject, formatNumber, quote } from './json';
import { PlacementDecisionKind } from './generated/placement-decision';
import { PlacementSnapshotFields, ReplicaInfoFields } from './generated/placement-snapshot';
import { ToolRequest, ToolResult, addToolRequest, toolRequestsJson, toolResult } from './tools';

export { PlacementSnapshotFields, ReplicaInfoFields, TenantRef } from './generated/placement-snapshot';
export { PlacementDecisionKind } from './generated/placement-decision';

/** One replica of the task's replica set. */
export class ReplicaInfo extends ReplicaInfoFields {
  static fromJson(o: JsonObject): ReplicaInfo {
    const r = new ReplicaInfo();
    r.readJson(o);
    return r;
  }

  /** Whether the replica runs on GPU `device` (as written in the configuration). */
  onDevice(device: string): bool {
    return this.devices.includes(device);
  }
}

export class PlacementSnapshot extends PlacementSnapshotFields {
  static fromJson(o: JsonObject): PlacementSnapshot {
    const s = new PlacementSnapshot();
    s.readJson(o);
    return s;
  }

  /** The result of the tool request `id`, or null while there is none. */
  tool(id: string): ToolResult | null {
    return toolResult(this.tools, id);
  }
}

export class PlacementDecision {
  decision: string = PlacementDecisionKind.DEFAULT;
  /** Whether `allowed` filters (an empty filter: no replica may run the task). */
  filtered: bool = false;
  allowed: string[] = [];
  scoreIds: string[] = [];
  scoreValues: f64[] = [];
  /** Host tools to run after this decision applies (granted plugins only). */
  tools: ToolRequest[] = [];

  /** Asks the host to fetch `url` (GET); its result appears as `tools.<id>` in later snapshots. */
  requestFetch(id: string, url: string): PlacementDecision {
    addToolRequest(this.tools, ToolRequest.fetch(id, url));
    return this;
  }

  /** Asks the host to search for `query`; its result appears as `tools.<id>` in later snapshots. */
  requestSearch(id: string, query: string, maxResults: i32 = 0): PlacementDecision {
    addToolRequest(this.tools, ToolRequest.search(id, query, maxResults));
    return this;
  }

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
    d.decision = PlacementDecisionKind.PLACE;
    d.filtered = true;
    d.allowed = replicaIds;
    return d;
  }

  /** Ranks replicas: among those with a free slot, the highest score wins; unnamed ones score 0. */
  static prefer(replicaId: string, score: f64): PlacementDecision {
    const d = new PlacementDecision();
    d.decision = PlacementDecisionKind.PLACE;
    return d.score(replicaId, score);
  }

  /** Adds (or replaces) one replica's score. */
  score(replicaId: string, score: f64): PlacementDecision {
    this.decision = PlacementDecisionKind.PLACE;
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
    if (this.decision == PlacementDecisionKind.PLACE) {
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
    return out + toolRequestsJson(this.tools) + '}';
  }
}
