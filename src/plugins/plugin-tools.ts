/**
 * Host tools for policy plugins (SPEC §10): the tool requests a plugin's decisions carry, run
 * through the tool proxy under the granted tenant's policy after the decision has applied, and
 * their results, kept per plugin for `plugins[].tools.ttl_ms` and passed in later snapshots. A
 * decision never waits for a tool: the plugin call stays pure and bounded, and a plugin decides
 * with whatever results it has.
 */
import type { ToolFetchResult, ToolSearchResult } from '../tools/tool-proxy.js';
import { ToolError } from '../tools/tool-error.js';
import type { Logger } from '../util/logger.js';
import type { PluginTool, PluginToolGrant } from './plugin-config.js';

/** One tool request of a decision (`tools[]` of the decision schemas). */
export type ToolRequest =
  | { readonly id: string; readonly tool: 'fetch'; readonly url: string }
  | { readonly id: string; readonly tool: 'search'; readonly query: string; readonly max_results?: number };

/** One entry of a snapshot's `tools` object (see the snapshot schemas). */
export type ToolResultJson =
  | {
      readonly tool: 'fetch';
      readonly at_ms: number;
      readonly status: number;
      readonly url: string;
      readonly content_type: string;
      readonly encoding: 'utf8' | 'base64';
      readonly body: string;
      readonly truncated: boolean;
    }
  | {
      readonly tool: 'search';
      readonly at_ms: number;
      readonly query: string;
      readonly results: ToolSearchResult['results'];
    }
  | {
      readonly tool: PluginTool;
      readonly at_ms: number;
      readonly error: { readonly code: string; readonly reason: string; readonly message: string };
    };

/** The part of the tool proxy plugins use; the audit fields name the plugin on each line. */
export interface PluginToolProxy {
  fetch(
    tenant: string,
    body: unknown,
    correlationId: string,
    audit?: Readonly<Record<string, string>>,
  ): Promise<ToolFetchResult>;
  search(
    tenant: string,
    body: unknown,
    correlationId: string,
    audit?: Readonly<Record<string, string>>,
  ): Promise<ToolSearchResult>;
}

/** Most results (fresh or in flight) one plugin holds; a request for another id waits for room. */
export const MAX_RESULTS_PER_PLUGIN = 64;
const MINUTE_MS = 60_000;

type Entry = { readonly inFlight: true } | { readonly inFlight: false; readonly result: ToolResultJson };

/** Why a decision's tool requests cannot be run for `pluginId` (not granted), or undefined. */
export function toolGrantProblem(
  pluginId: string,
  grant: PluginToolGrant | undefined,
  requests: readonly ToolRequest[] | undefined,
): string | undefined {
  if (requests === undefined || requests.length === 0) return undefined;
  if (grant === undefined)
    return `tools: plugin '${pluginId}' is granted no host tools (plugins[].tools), yet asked for '${requests[0]!.tool}'`;
  const refused = requests.filter((r) => !grant.allow.includes(r.tool)).map((r) => r.tool);
  if (refused.length > 0)
    return `tools: '${[...new Set(refused)].join("', '")}' is not granted to plugin '${pluginId}' (plugins[].tools.allow: ${grant.allow.join(', ')})`;
  const ids = requests.map((r) => r.id);
  const twice = ids.find((id, i) => ids.indexOf(id) !== i);
  if (twice !== undefined) return `tools: the id '${twice}' is asked for twice`;
  return undefined;
}

export interface PluginToolsOptions {
  readonly pluginId: string;
  readonly grant: PluginToolGrant;
  readonly proxy: PluginToolProxy;
  readonly logger: Logger;
  /** The orchestrator's clock (Unix epoch ms), the one snapshots carry as `now_ms`. */
  readonly now: () => number;
}

/** One plugin's tool runner and result cache; it outlives reloads of the plugin. */
export class PluginTools {
  readonly #o: PluginToolsOptions;
  readonly #entries = new Map<string, Entry>();
  /** Start times of the calls made in the last minute (`max_per_minute`). */
  readonly #started: number[] = [];
  readonly #pending = new Set<Promise<void>>();
  #closed = false;

  constructor(o: PluginToolsOptions) {
    this.#o = o;
  }

  /** The plugin's fresh results by request id, for a snapshot taken at `nowMs`. */
  results(nowMs: number): Record<string, ToolResultJson> {
    const out: Record<string, ToolResultJson> = {};
    for (const [id, e] of this.#entries) {
      if (e.inFlight) continue;
      if (this.#expired(e.result, nowMs)) this.#entries.delete(id);
      else out[id] = e.result;
    }
    return out;
  }

  /**
   * Starts the requests whose id has no fresh or in-flight result; returns at once. A request
   * beyond `max_per_minute` is not made: its result is an ADMISSION_REJECT `rate_limited` error.
   */
  request(requests: readonly ToolRequest[], correlationId: string): void {
    if (this.#closed) return;
    const now = this.#o.now();
    for (const req of requests) {
      const e = this.#entries.get(req.id);
      if (e !== undefined && (e.inFlight || !this.#expired(e.result, now))) continue;
      if (e === undefined && this.#entries.size >= MAX_RESULTS_PER_PLUGIN) {
        this.#o.logger.warn(
          { event: 'plugin.tool_skipped', plugin: this.#o.pluginId, tool_id: req.id },
          `plugin '${this.#o.pluginId}': tool request '${req.id}' not run: ${MAX_RESULTS_PER_PLUGIN} results are held`,
        );
        continue;
      }
      while (this.#started.length > 0 && this.#started[0]! <= now - MINUTE_MS) this.#started.shift();
      const max = this.#o.grant.maxPerMinute;
      if (max !== undefined && this.#started.length >= max) {
        this.#entries.set(req.id, {
          inFlight: false,
          result: {
            tool: req.tool,
            at_ms: now,
            error: {
              code: 'ADMISSION_REJECT',
              reason: 'rate_limited',
              message: `plugin '${this.#o.pluginId}' made ${max} tool calls in the last minute (plugins[].tools.max_per_minute)`,
            },
          },
        });
        continue;
      }
      this.#started.push(now);
      this.#entries.set(req.id, { inFlight: true });
      const run = this.#run(req, correlationId).then((result) => {
        if (!this.#closed) this.#entries.set(req.id, { inFlight: false, result });
      });
      this.#pending.add(run);
      void run.finally(() => this.#pending.delete(run));
    }
  }

  /** Stops taking requests and waits for the calls in flight (each bounded by its tenant's `tools.timeout_ms`). */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#pending]);
  }

  #expired(result: ToolResultJson, nowMs: number): boolean {
    return result.at_ms + this.#o.grant.ttlMs <= nowMs;
  }

  async #run(req: ToolRequest, correlationId: string): Promise<ToolResultJson> {
    const { proxy, grant, pluginId } = this.#o;
    const audit = { plugin: pluginId, tool_id: req.id };
    try {
      if (req.tool === 'fetch') {
        const r = await proxy.fetch(grant.tenant, { url: req.url }, correlationId, audit);
        return {
          tool: 'fetch',
          at_ms: this.#o.now(),
          status: r.status,
          url: r.url,
          content_type: r.content_type,
          encoding: r.encoding,
          body: r.body,
          truncated: r.truncated,
        };
      }
      const body = {
        query: req.query,
        ...(req.max_results === undefined ? {} : { max_results: req.max_results }),
      };
      const r = await proxy.search(grant.tenant, body, correlationId, audit);
      return { tool: 'search', at_ms: this.#o.now(), query: r.query, results: r.results };
    } catch (err) {
      // The proxy has logged the audit line with the reason; the plugin sees the typed error.
      const e =
        err instanceof ToolError
          ? { code: err.code, reason: err.decision, message: err.message }
          : { code: 'UPSTREAM_FAILED', reason: 'upstream_error', message: 'the tool call failed' };
      return { tool: req.tool, at_ms: this.#o.now(), error: e };
    }
  }
}
