/**
 * The mediated tool proxy of the data plane (SPEC §10): `fetch` and `search` for a tenant under
 * its policy — rate bound, guarded upstream exchange, redaction of everything returned, one
 * audit log line and the `tool_*` metrics per call, whatever its outcome.
 */
import type { ResolvedConfig } from '../config/resolved-config.js';
import type { OrchMetrics } from '../metrics/metrics.js';
import { TokenBucket } from '../scheduler/token-bucket.js';
import type { Logger } from '../util/logger.js';
import { configSecrets, Redactor } from '../util/redact.js';
import { checkUrl, guardedRequest, type Resolver, type UpstreamResponse } from './guarded-request.js';
import { denied, invalid, ToolError, upstreamFailed, type ToolDecision } from './tool-error.js';
import { toolPolicyOf, type ResolvedToolsConfig, type ToolPolicy } from './tools-config.js';
import { TOOL_DEFAULTS } from './tools-config-schema.js';

/**
 * E-mail addresses, as scrubbed from results when `redact_emails` is on. Every repetition is
 * bounded (RFC 5321 lengths): an unbounded one backtracks quadratically over a long run of
 * address characters without an `@`, and bodies are up to `max_response_bytes` long.
 */
export const EMAIL_PATTERN =
  '[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\\.[A-Za-z0-9-]{1,63}){0,8}\\.[A-Za-z]{2,24}';

/** Upstream response headers passed back to the client; no others (cookies, auth challenges). */
export const RESPONSE_HEADERS: readonly string[] = [
  'content-type',
  'content-length',
  'content-language',
  'content-encoding',
  'last-modified',
  'etag',
  'cache-control',
  'expires',
];

const MAX_URL_CHARS = 8_192;
const MAX_QUERY_CHARS = 1_000;
const MAX_SEARCH_RESULTS = 50;

/** Media types returned as text (UTF-8, redacted); every other allowed type is returned as base64. */
export function isTextual(mediaType: string): boolean {
  return (
    mediaType.startsWith('text/') ||
    /^application\/(?:json|xml|javascript|ecmascript|x-www-form-urlencoded|[a-z0-9.-]+\+(?:json|xml))$/.test(
      mediaType,
    )
  );
}

export interface ToolFetchResult {
  readonly url: string;
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly content_type: string;
  readonly encoding: 'utf8' | 'base64';
  readonly body: string;
  readonly bytes: number;
  readonly truncated: boolean;
  readonly redirects: number;
}

export interface ToolSearchResult {
  readonly query: string;
  readonly results: { title: string; url: string; snippet: string }[];
}

interface Outcome {
  readonly url?: string;
  readonly status?: number;
  readonly bytes?: number;
}

export interface ToolProxyOptions {
  readonly config: ResolvedConfig;
  readonly metrics: OrchMetrics;
  readonly logger: Logger;
  /** Clock of the rate bound (tests pass their own). */
  readonly now?: () => number;
  /** Host name resolution (default: the system resolver). */
  readonly resolve?: Resolver;
}

export class ToolProxy {
  readonly #tools: ResolvedToolsConfig;
  readonly #o: ToolProxyOptions;
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #redactors = new Map<ToolPolicy, Redactor>();
  readonly #now: () => number;

  constructor(o: ToolProxyOptions) {
    this.#o = o;
    this.#tools = o.config.tools;
    this.#now = o.now ?? (() => performance.now());
  }

  /**
   * `POST /v1/tools/fetch`: the tenant's policy applied to one GET or HEAD. `audit` adds fields
   * to the audit line (a plugin's calls name the plugin).
   */
  async fetch(
    tenant: string,
    body: unknown,
    correlationId: string,
    audit: Readonly<Record<string, string>> = {},
  ): Promise<ToolFetchResult> {
    let url: string | undefined;
    return this.#audited(
      'fetch',
      tenant,
      correlationId,
      audit,
      () => url,
      async (policy, redactor) => {
        const req = this.#fetchRequest(body);
        url = req.url.href;
        // Cheap refusals before a token is spent: a URL the policy refuses costs no rate.
        checkUrl(req.url, policy);
        this.#take(tenant, policy);
        const up = await guardedRequest({
          url: req.url,
          method: req.method,
          headers: req.headers,
          policy,
          ...(this.#o.resolve ? { resolve: this.#o.resolve } : {}),
        });
        url = up.url.href;
        return { value: this.#fetchResult(up, redactor), outcome: { status: up.status, bytes: up.bytes } };
      },
    );
  }

  /** `POST /v1/tools/search`: the query through the configured provider, results redacted. */
  async search(
    tenant: string,
    body: unknown,
    correlationId: string,
    audit: Readonly<Record<string, string>> = {},
  ): Promise<ToolSearchResult> {
    let url: string | undefined;
    return this.#audited(
      'search',
      tenant,
      correlationId,
      audit,
      () => url,
      async (policy, redactor) => {
        const { query, maxResults } = searchRequest(body);
        const provider = this.#tools.search;
        if (provider === undefined) throw denied('no search provider is configured (tools.search)');
        const target =
          provider.provider === 'searxng'
            ? new URL(`${provider.url.replace(/\/+$/, '')}/search`)
            : new URL(
                provider.url
                  .replaceAll('{query}', encodeURIComponent(query))
                  .replaceAll('{max_results}', String(maxResults)),
              );
        if (provider.provider === 'searxng') {
          target.searchParams.set('q', query);
          target.searchParams.set('format', 'json');
        }
        url = target.href;
        this.#take(tenant, policy);
        const up = await guardedRequest({
          url: target,
          method: 'GET',
          headers: {
            accept: 'application/json',
            'accept-encoding': 'identity',
            'user-agent': 'llama-orch-tool-proxy',
          },
          policy,
          trusted: true,
        });
        if (up.status < 200 || up.status > 299)
          throw upstreamFailed(`the search provider answered ${up.status}`);
        if (up.truncated)
          throw upstreamFailed('the search provider answered more than tools.max_response_bytes');
        return {
          value: { query, results: parseResults(up.body, policy, maxResults, redactor) },
          outcome: { status: up.status, bytes: up.bytes },
        };
      },
    );
  }

  /** Spends a tenant's whole rate bound (the Pact provider state of a rate-limited tenant). */
  exhaust(tenant: string): void {
    const policy = toolPolicyOf(this.#tools, tenant);
    const bucket = this.#bucket(tenant, policy);
    while (bucket.take(this.#now()).ok);
  }

  #bucket(tenant: string, policy: ToolPolicy): TokenBucket {
    let b = this.#buckets.get(tenant);
    if (!b) this.#buckets.set(tenant, (b = new TokenBucket(policy.ratePerSecond, policy.burst, this.#now())));
    return b;
  }

  #take(tenant: string, policy: ToolPolicy): void {
    const r = this.#bucket(tenant, policy).take(this.#now());
    if (!r.ok)
      throw new ToolError(
        'ADMISSION_REJECT',
        'rate_limited',
        `tenant '${tenant}' exceeded its tool rate (tools.rate_per_s ${policy.ratePerSecond}, burst ${policy.burst})`,
        { retryAfterMs: r.retryAfterMs, policyLabel: 'reject' },
      );
  }

  #redactor(policy: ToolPolicy): Redactor {
    let r = this.#redactors.get(policy);
    if (!r) {
      const patterns = [
        ...this.#o.config.logging.redactPatterns,
        ...policy.redactPatterns,
        ...(policy.redactEmails ? [EMAIL_PATTERN] : []),
      ];
      this.#redactors.set(policy, (r = new Redactor(patterns, configSecrets(this.#o.config))));
    }
    return r;
  }

  async #audited<T>(
    tool: 'fetch' | 'search',
    tenant: string,
    correlationId: string,
    audit: Readonly<Record<string, string>>,
    urlOf: () => string | undefined,
    run: (policy: ToolPolicy, redactor: Redactor) => Promise<{ value: T; outcome: Outcome }>,
  ): Promise<T> {
    const started = performance.now();
    const policy = toolPolicyOf(this.#tools, tenant);
    const redactor = this.#redactor(policy);
    let decision: ToolDecision = 'allowed';
    let outcome: Outcome = {};
    let reason: string | undefined;
    try {
      if (!policy.enabled) throw denied(`the tool proxy is disabled for tenant '${tenant}' (tools.enabled)`);
      const done = await run(policy, redactor);
      outcome = done.outcome;
      return done.value;
    } catch (err) {
      if (err instanceof ToolError) {
        decision = err.decision;
        reason = err.message;
      } else decision = 'upstream_error';
      throw err;
    } finally {
      const latencyMs = performance.now() - started;
      const url = urlOf();
      this.#o.metrics.inc('tool_calls_total', { tool, tenant, decision });
      this.#o.metrics.observe('tool_latency_ms', { tool, decision }, latencyMs);
      this.#o.logger.info(
        {
          event: 'tool.call',
          correlation_id: correlationId,
          ...audit,
          tool,
          tenant,
          url: url === undefined ? undefined : redactor.scrub(url),
          decision,
          ...(reason === undefined ? {} : { reason: redactor.scrub(reason) }),
          status: outcome.status,
          bytes: outcome.bytes ?? 0,
          latency_ms: Math.round(latencyMs),
        },
        `tool ${tool} ${decision}`,
      );
    }
  }

  #fetchRequest(body: unknown): { url: URL; method: 'GET' | 'HEAD'; headers: Record<string, string> } {
    if (body === null || typeof body !== 'object' || Array.isArray(body))
      throw invalid('body: a JSON object is required');
    const b = body as Record<string, unknown>;
    for (const k of Object.keys(b))
      if (!['url', 'method', 'headers'].includes(k)) throw invalid(`${k}: unknown field`);
    if (typeof b['url'] !== 'string' || b['url'] === '' || b['url'].length > MAX_URL_CHARS)
      throw invalid(`url: a URL of at most ${MAX_URL_CHARS} characters is required`);
    let url: URL;
    try {
      url = new URL(b['url']);
    } catch {
      throw invalid('url: not a valid absolute URL');
    }
    const method = b['method'] ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') throw invalid(`method: must be GET or HEAD`);
    const headers: Record<string, string> = {};
    const given = b['headers'] ?? {};
    if (given === null || typeof given !== 'object' || Array.isArray(given))
      throw invalid('headers: an object of header names to strings is required');
    for (const [name, value] of Object.entries(given as Record<string, unknown>)) {
      const lower = name.toLowerCase();
      if (!this.#tools.forwardHeaders.includes(lower))
        throw invalid(
          `headers.${name}: not forwarded (tools.forward_headers: ${this.#tools.forwardHeaders.join(', ')})`,
        );
      if (typeof value !== 'string' || /[\r\n\0]/.test(value))
        throw invalid(`headers.${name}: must be a one-line string`);
      headers[lower] = value;
    }
    // The size bound counts the bytes as sent: no compressed body is asked for.
    headers['accept-encoding'] = 'identity';
    headers['user-agent'] = 'llama-orch-tool-proxy';
    return { url, method, headers };
  }

  #fetchResult(up: UpstreamResponse, redactor: Redactor): ToolFetchResult {
    const headers: Record<string, string> = {};
    for (const name of RESPONSE_HEADERS) {
      const v = up.headers[name];
      if (typeof v === 'string') headers[name] = redactor.scrub(v);
    }
    const text = isTextual(up.mediaType);
    return {
      url: redactor.scrub(up.url.href),
      status: up.status,
      headers,
      content_type: up.mediaType,
      encoding: text ? 'utf8' : 'base64',
      body: text ? redactor.scrub(new TextDecoder('utf-8').decode(up.body)) : up.body.toString('base64'),
      bytes: up.bytes,
      truncated: up.truncated,
      redirects: up.redirects,
    };
  }
}

function searchRequest(body: unknown): { query: string; maxResults: number } {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw invalid('body: a JSON object is required');
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b))
    if (!['query', 'max_results'].includes(k)) throw invalid(`${k}: unknown field`);
  const q = b['query'];
  if (typeof q !== 'string' || q.trim() === '' || q.length > MAX_QUERY_CHARS)
    throw invalid(`query: a non-empty string of at most ${MAX_QUERY_CHARS} characters is required`);
  const m = b['max_results'] ?? TOOL_DEFAULTS.searchMaxResults;
  if (typeof m !== 'number' || !Number.isInteger(m) || m < 1 || m > MAX_SEARCH_RESULTS)
    throw invalid(`max_results: an integer from 1 to ${MAX_SEARCH_RESULTS}`);
  return { query: q, maxResults: m };
}

/**
 * SearxNG's JSON answer (`searx/webutils.py` `get_json_response`, searxng/searxng at
 * 9fea41204fdfa7a5cfa15b0ebd12904c520478ce): `{query, results: [{url, title, content, …}], …}`.
 * Results whose host the tenant's domain lists refuse are left out, so a search never hands out
 * a link the fetch would refuse by name.
 */
function parseResults(
  body: Buffer,
  policy: ToolPolicy,
  max: number,
  redactor: Redactor,
): ToolSearchResult['results'] {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw upstreamFailed('the search provider did not answer JSON');
  }
  const results = (doc as { results?: unknown } | null)?.results;
  if (!Array.isArray(results)) throw upstreamFailed('the search provider answered no results array');
  const out: ToolSearchResult['results'] = [];
  for (const r of results as unknown[]) {
    if (out.length >= max) break;
    const x = (r ?? {}) as Record<string, unknown>;
    if (typeof x['url'] !== 'string') continue;
    let url: URL;
    try {
      url = new URL(x['url']);
      checkUrl(url, { ...policy, allowIpLiterals: true });
    } catch {
      continue;
    }
    out.push({
      title: redactor.scrub(typeof x['title'] === 'string' ? x['title'] : ''),
      url: redactor.scrub(url.href),
      snippet: redactor.scrub(typeof x['content'] === 'string' ? x['content'] : ''),
    });
  }
  return out;
}
