/* eslint-disable @typescript-eslint/no-unnecessary-type-assertion -- AssemblyScript: <i32>, <i64>, <f64> and <usize> are value conversions, not type assertions */
/**
 * Host tools for plugins granted them (`plugins[].tools` in the configuration): a decision asks
 * for a `fetch` or a `search` by id, the host runs it after the decision applies, and later
 * snapshots carry its result under that id. A decision never waits for a tool: a plugin decides
 * with what it has (no result yet: its default), and asks again — the host runs a request only
 * when no fresh or in-flight result has its id.
 */
import { SearchHitData, ToolResultData } from './generated/shared';
import { JsonObject, formatNumber, quote } from './json';

/** Tool names of ABI v1. */
export class ToolName {
  static readonly FETCH: string = 'fetch';
  static readonly SEARCH: string = 'search';
}

/** One tool request of a decision (`tools[]` of the decision schemas). */
export class ToolRequest {
  /** Names the result in later snapshots: `^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`. */
  id: string = '';
  /** `fetch` or `search`. */
  tool: string = '';
  /** fetch: an absolute http(s) URL. */
  url: string = '';
  /** search: the query. */
  query: string = '';
  /** search: 0 for the host's default. */
  max_results: i32 = 0;

  static fetch(id: string, url: string): ToolRequest {
    const r = new ToolRequest();
    r.id = id;
    r.tool = ToolName.FETCH;
    r.url = url;
    return r;
  }

  static search(id: string, query: string, maxResults: i32 = 0): ToolRequest {
    const r = new ToolRequest();
    r.id = id;
    r.tool = ToolName.SEARCH;
    r.query = query;
    r.max_results = maxResults;
    return r;
  }

  toJson(): string {
    let out = '{"id":' + quote(this.id) + ',"tool":' + quote(this.tool);
    if (this.tool == ToolName.FETCH) out += ',"url":' + quote(this.url);
    else {
      out += ',"query":' + quote(this.query);
      if (this.max_results > 0) out += ',"max_results":' + formatNumber(<f64>this.max_results);
    }
    return out + '}';
  }
}

/** Adds `request` to `list`, replacing one with the same id (a decision names each id once). */
export function addToolRequest(list: ToolRequest[], request: ToolRequest): void {
  for (let i = 0; i < list.length; i++)
    if (list[i].id == request.id) {
      list[i] = request;
      return;
    }
  list.push(request);
}

/** The `,"tools":[…]` member of a decision, or "" when it asks for none. */
export function toolRequestsJson(list: ToolRequest[]): string {
  if (list.length == 0) return '';
  let out = ',"tools":[';
  for (let i = 0; i < list.length; i++) out += (i > 0 ? ',' : '') + list[i].toJson();
  return out + ']';
}

/** One search result (redacted by the host), as the snapshot schemas define it. */
export type SearchHit = SearchHitData;

/** The result of one tool request, as a snapshot's `tools.<id>` carries it. */
export class ToolResult {
  id: string = '';
  /** `fetch` or `search`. */
  tool: string = '';
  /** When the result arrived, on the `now_ms` clock. */
  atMs: f64 = 0;
  /** fetch: the upstream HTTP status; 0 on an error. */
  status: i32 = 0;
  /** fetch: the final URL (after redirects, redacted). */
  url: string = '';
  contentType: string = '';
  /** `utf8` (text, redacted) or `base64`. */
  encoding: string = '';
  body: string = '';
  truncated: bool = false;
  /** search: the query and its results. */
  query: string = '';
  results: SearchHit[] = [];
  /** "" when the call succeeded; else an error envelope code such as FORBIDDEN or UPSTREAM_FAILED. */
  errorCode: string = '';
  /** The audit decision of a failed call: denied, invalid, rate_limited, upstream_error, timeout. */
  errorReason: string = '';
  errorMessage: string = '';

  /** The call succeeded (a fetch may still have answered a non-2xx status). */
  get ok(): bool {
    return this.errorCode.length == 0;
  }

  /** How old the result is at `nowMs` (a snapshot's `now_ms`). */
  ageMs(nowMs: f64): f64 {
    return nowMs - this.atMs;
  }

  /** Read through the class generated from the snapshot schemas' tool result. */
  static fromJson(id: string, o: JsonObject): ToolResult {
    const d = ToolResultData.fromJson(o);
    const r = new ToolResult();
    r.id = id;
    r.tool = d.tool;
    r.atMs = d.at_ms;
    r.status = isNaN(d.status) ? 0 : <i32>d.status;
    r.url = d.url;
    r.contentType = d.content_type;
    r.encoding = d.encoding;
    r.body = d.body;
    r.truncated = d.truncated;
    r.query = d.query;
    r.results = d.results;
    const e = d.error;
    if (e != null) {
      r.errorCode = e.code.length > 0 ? e.code : 'UPSTREAM_FAILED';
      r.errorReason = e.reason;
      r.errorMessage = e.message;
    }
    return r;
  }
}

/**
 * The result named `id` in a snapshot's `tools` object (`AdmissionSnapshot.tools`,
 * `PlacementSnapshot.tools`), or null while there is none (never asked, in flight, or expired).
 */
export function toolResult(tools: JsonObject, id: string): ToolResult | null {
  const v = tools.get(id);
  if (v == null) return null;
  const o = v.asObject();
  return o == null ? null : ToolResult.fromJson(id, o);
}
