/**
 * The `tools:` section of the configuration (SPEC §10): the mediated tool proxy's policy, its
 * defaults and per-tenant overrides. Part of `ConfigSchema` (src/config/schema.ts), so it is in the
 * published JSON Schema; `resolveToolsConfig()` applies the defaults documented here.
 */
import { Type } from '@sinclair/typebox';

/** Defaults of the tool proxy policy, shared by the schema annotations and the resolver. */
export const TOOL_DEFAULTS = {
  enabled: false,
  allowIpLiterals: false,
  allowPrivate: false,
  allowedMimeTypes: [
    'text/*',
    'application/json',
    'application/ld+json',
    'application/xml',
    'application/xhtml+xml',
    'application/rss+xml',
    'application/atom+xml',
  ],
  maxResponseBytes: 1_048_576,
  timeoutMs: 10_000,
  maxRedirects: 5,
  ratePerSecond: 1,
  burst: 10,
  redactEmails: true,
  forwardHeaders: ['accept', 'accept-language', 'if-none-match', 'if-modified-since'],
  searchMaxResults: 10,
} as const;

const strings = (description: string, dflt?: readonly string[]) =>
  Type.Array(Type.String({ minLength: 1 }), {
    description,
    ...(dflt === undefined ? {} : { default: [...dflt] }),
  });

/** The policy fields a tenant override may set; every one falls back to the `tools:` value. */
const policyFields = {
  enabled: Type.Optional(
    Type.Boolean({
      description: 'Whether the tool proxy answers this scope (off by default).',
      default: TOOL_DEFAULTS.enabled,
    }),
  ),
  allow_domains: Type.Optional(
    strings(
      'Hosts that may be fetched: `example.com` matches that host only, `.example.com` any host under it (not the apex). Empty or absent: every host not denied.',
    ),
  ),
  deny_domains: Type.Optional(
    strings('Hosts that are never fetched (same forms as `allow_domains`); deny wins over allow.'),
  ),
  allow_ip_literals: Type.Optional(
    Type.Boolean({
      description:
        'URLs naming an IP address instead of a host name are refused unless true (the address is still checked).',
      default: TOOL_DEFAULTS.allowIpLiterals,
    }),
  ),
  allow_private: Type.Optional(
    Type.Boolean({
      description:
        'Allow addresses that are not globally routable (private, loopback, link-local, unique-local, CGNAT, multicast, unspecified, reserved), checked after DNS resolution.',
      default: TOOL_DEFAULTS.allowPrivate,
    }),
  ),
  allow_cidrs: Type.Optional(
    strings(
      'Non-public address ranges allowed anyway, e.g. `10.1.2.0/24` or `fd00::/8` (checked after DNS resolution).',
    ),
  ),
  allowed_mime_types: Type.Optional(
    strings(
      'Media types a fetched response may have (`type/subtype` or `type/*`); others are refused.',
      TOOL_DEFAULTS.allowedMimeTypes,
    ),
  ),
  max_response_bytes: Type.Optional(
    Type.Integer({
      minimum: 1,
      description: 'Most bytes read from an upstream response; a longer body is cut (`truncated: true`).',
      default: TOOL_DEFAULTS.maxResponseBytes,
    }),
  ),
  timeout_ms: Type.Optional(
    Type.Integer({
      minimum: 1,
      description: 'Total time of one call (DNS, connects, redirects and body), in milliseconds.',
      default: TOOL_DEFAULTS.timeoutMs,
    }),
  ),
  max_redirects: Type.Optional(
    Type.Integer({
      minimum: 0,
      description: 'Redirects followed (each one checked like the first URL); more are refused.',
      default: TOOL_DEFAULTS.maxRedirects,
    }),
  ),
  rate_per_s: Type.Optional(
    Type.Number({
      exclusiveMinimum: 0,
      description: 'Tool calls per second of a tenant (token bucket, fetch and search together).',
      default: TOOL_DEFAULTS.ratePerSecond,
    }),
  ),
  burst: Type.Optional(
    Type.Integer({
      minimum: 1,
      description: 'Tool calls a tenant may make at once before `rate_per_s` applies.',
      default: TOOL_DEFAULTS.burst,
    }),
  ),
  redact_patterns: Type.Optional(
    strings(
      'Regular expressions scrubbed from what the proxy returns, on top of `logging.redact_patterns` and every configured secret.',
    ),
  ),
  redact_emails: Type.Optional(
    Type.Boolean({
      description: 'Replace e-mail addresses in what the proxy returns.',
      default: TOOL_DEFAULTS.redactEmails,
    }),
  ),
};

export const TOOL_SEARCH_PROVIDERS = ['searxng', 'template'] as const;

export const ToolSearchSchema = Type.Object(
  {
    provider: Type.Unsafe<(typeof TOOL_SEARCH_PROVIDERS)[number]>({
      type: 'string',
      enum: [...TOOL_SEARCH_PROVIDERS],
      description:
        '`searxng`: `GET <url>/search?q=…&format=json`; `template`: `GET` of `url` with `{query}` (and optionally `{max_results}`) replaced, answering the same JSON (`results[].title/url/content`).',
    }),
    url: Type.String({
      minLength: 1,
      description: 'Base URL of the SearxNG instance, or the URL template (http or https).',
    }),
  },
  {
    description:
      'The search provider of `POST /v1/tools/search`. It is the operator’s endpoint: the tenant domain and address rules do not apply to it, its time and size bounds do.',
    additionalProperties: false,
  },
);

export const ToolTenantSchema = Type.Object(
  {
    id: Type.String({ minLength: 1, description: 'The tenant these settings apply to.' }),
    ...policyFields,
  },
  {
    description: "One tenant's tool policy: each field set here replaces the `tools:` value (lists too).",
    additionalProperties: false,
  },
);

export const ToolsSchema = Type.Object(
  {
    ...policyFields,
    forward_headers: Type.Optional(
      strings(
        'Request headers a client may send on through `POST /v1/tools/fetch` (case-insensitive); any other is refused.',
        TOOL_DEFAULTS.forwardHeaders,
      ),
    ),
    search: Type.Optional(ToolSearchSchema),
    tenants: Type.Optional(Type.Array(ToolTenantSchema, { description: 'Per-tenant overrides.' })),
  },
  {
    description:
      'The mediated tool proxy, `POST /v1/tools/fetch` and `POST /v1/tools/search` (SPEC §10): policy defaults and per-tenant overrides.',
    additionalProperties: false,
  },
);
