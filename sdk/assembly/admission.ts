/**
 * The admission hook (ABI v1). The snapshot's classes are generated from
 * contracts/plugins/admission-snapshot.schema.json (sdk/assembly/generated/, `npm run gen`), the
 * decision's values from admission-decision.schema.json; this file adds the methods and the
 * decision builders.
 */
import { JsonObject, formatNumber, quote } from './json';
import { AdmissionDecisionKind } from './generated/admission-decision';
import { AdmissionSnapshotFields, BoundsFields } from './generated/admission-snapshot';
import { ToolRequest, ToolResult, addToolRequest, toolRequestsJson, toolResult } from './tools';

export {
  PluginInfo,
  Priority,
  SearchHitData,
  TaskInfo,
  ToolErrorData,
  ToolResultData,
  Workload,
} from './generated/shared';
export { AdmissionSnapshotFields, BoundsFields, PoolInfo, TenantUsage } from './generated/admission-snapshot';
export { AdmissionDecisionKind, RefusalCode } from './generated/admission-decision';

/** What an adjustment may set; outside them the host treats the decision as malformed. */
export class Bounds extends BoundsFields {
  static fromJson(o: JsonObject): Bounds {
    const b = new Bounds();
    b.readJson(o);
    return b;
  }

  allowsPriority(p: string): bool {
    return this.priorities.includes(p);
  }

  clampWeight(w: f64): f64 {
    return Math.min(this.weight_max, Math.max(this.weight_min, w));
  }
}

export class AdmissionSnapshot extends AdmissionSnapshotFields {
  static fromJson(o: JsonObject): AdmissionSnapshot {
    const s = new AdmissionSnapshot();
    s.readJson(o);
    return s;
  }

  /** The result of the tool request `id`, or null while there is none. */
  tool(id: string): ToolResult | null {
    return toolResult(this.tools, id);
  }
}

export class AdmissionDecision {
  decision: string = AdmissionDecisionKind.ACCEPT;
  code: string = '';
  message: string = '';
  /** -1: none. */
  retry_after_ms: f64 = -1;
  /** "": unchanged. */
  priority: string = '';
  /** 0: unchanged. */
  weight: f64 = 0;
  /** Host tools to run after this decision applies (granted plugins only). */
  tools: ToolRequest[] = [];

  /** Asks the host to fetch `url` (GET); its result appears as `tools.<id>` in later snapshots. */
  requestFetch(id: string, url: string): AdmissionDecision {
    addToolRequest(this.tools, ToolRequest.fetch(id, url));
    return this;
  }

  /** Asks the host to search for `query`; its result appears as `tools.<id>` in later snapshots. */
  requestSearch(id: string, query: string, maxResults: i32 = 0): AdmissionDecision {
    addToolRequest(this.tools, ToolRequest.search(id, query, maxResults));
    return this;
  }

  /** The built-in policy's answer: admit unchanged. */
  static accept(): AdmissionDecision {
    return new AdmissionDecision();
  }

  /** A typed refusal (a `RefusalCode`): the client gets the error envelope with this code and message. */
  static refuse(code: string, message: string, retryAfterMs: f64 = -1): AdmissionDecision {
    const d = new AdmissionDecision();
    d.decision = AdmissionDecisionKind.REFUSE;
    d.code = code;
    d.message = message;
    d.retry_after_ms = retryAfterMs;
    return d;
  }

  /** Changes priority and/or weight ("" / 0 leave them); both must be within the snapshot's bounds. */
  static adjust(priority: string, weight: f64 = 0): AdmissionDecision {
    const d = new AdmissionDecision();
    d.decision = AdmissionDecisionKind.ADJUST;
    d.priority = priority;
    d.weight = weight;
    return d;
  }

  toJson(): string {
    let out = '{"decision":' + quote(this.decision);
    if (this.decision == AdmissionDecisionKind.REFUSE) {
      out += ',"code":' + quote(this.code) + ',"message":' + quote(this.message);
      if (this.retry_after_ms >= 0)
        out += ',"retry_after_ms":' + formatNumber(Math.floor(this.retry_after_ms));
    } else if (this.decision == AdmissionDecisionKind.ADJUST) {
      if (this.priority.length > 0) out += ',"priority":' + quote(this.priority);
      if (this.weight > 0) out += ',"weight":' + formatNumber(this.weight);
    }
    return out + toolRequestsJson(this.tools) + '}';
  }
}
