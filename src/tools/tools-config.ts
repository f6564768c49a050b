/** The resolved `tools:` configuration (defaults applied) and its resolver (SPEC §10). */
import type { Static } from '@sinclair/typebox';
import { parseCidr } from './address-policy.js';
import {
  TOOL_DEFAULTS,
  type ToolSearchSchema,
  type ToolsSchema,
  type ToolTenantSchema,
} from './tools-config-schema.js';

export type RawToolsConfig = Static<typeof ToolsSchema>;
type RawToolPolicy = Omit<Static<typeof ToolTenantSchema>, 'id'>;

/** The tool policy of one tenant, every default applied. */
export interface ToolPolicy {
  readonly enabled: boolean;
  /** Empty: every host that no deny entry matches. */
  readonly allowDomains: readonly string[];
  readonly denyDomains: readonly string[];
  readonly allowIpLiterals: boolean;
  readonly allowPrivate: boolean;
  readonly allowCidrs: readonly string[];
  readonly allowedMimeTypes: readonly string[];
  readonly maxResponseBytes: number;
  readonly timeoutMs: number;
  readonly maxRedirects: number;
  readonly ratePerSecond: number;
  readonly burst: number;
  /** Patterns scrubbed from results, beyond the logging patterns and the configured secrets. */
  readonly redactPatterns: readonly string[];
  readonly redactEmails: boolean;
}

export interface ResolvedToolsConfig {
  /** The policy of tenants without an override. */
  readonly defaults: ToolPolicy;
  readonly tenants: ReadonlyMap<string, ToolPolicy>;
  /** Lower-case names of the request headers a client may forward. */
  readonly forwardHeaders: readonly string[];
  readonly search: Static<typeof ToolSearchSchema> | undefined;
}

const DOMAIN = /^\.?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
const MIME = /^[a-z0-9!#$&^_.+-]+\/(?:\*|[a-z0-9!#$&^_.+-]+)$/;
const HEADER = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

function policyOf(
  raw: RawToolPolicy,
  base: ToolPolicy | undefined,
  at: string,
  problems: string[],
): ToolPolicy {
  const lower = (xs: readonly string[] | undefined) => xs?.map((x) => x.trim().toLowerCase());
  const allowDomains = lower(raw.allow_domains) ?? base?.allowDomains ?? [];
  const denyDomains = lower(raw.deny_domains) ?? base?.denyDomains ?? [];
  for (const [name, list] of [
    ['allow_domains', raw.allow_domains === undefined ? [] : allowDomains],
    ['deny_domains', raw.deny_domains === undefined ? [] : denyDomains],
  ] as const)
    list.forEach((d, i) => {
      if (!DOMAIN.test(d)) problems.push(`${at}.${name}[${i}]: '${d}' is not a host name or a '.suffix'`);
    });
  const allowCidrs = raw.allow_cidrs ?? base?.allowCidrs ?? [];
  if (raw.allow_cidrs !== undefined)
    allowCidrs.forEach((c, i) => {
      if (parseCidr(c) === undefined)
        problems.push(`${at}.allow_cidrs[${i}]: '${c}' is not an address range`);
    });
  const allowedMimeTypes =
    lower(raw.allowed_mime_types) ?? base?.allowedMimeTypes ?? TOOL_DEFAULTS.allowedMimeTypes;
  if (raw.allowed_mime_types !== undefined)
    allowedMimeTypes.forEach((m, i) => {
      if (!MIME.test(m))
        problems.push(`${at}.allowed_mime_types[${i}]: '${m}' is not 'type/subtype' or 'type/*'`);
    });
  const redactPatterns = raw.redact_patterns ?? base?.redactPatterns ?? [];
  // Compiled here rather than with the logging check: redact.ts reads the resolved config.
  if (raw.redact_patterns !== undefined)
    redactPatterns.forEach((p, i) => {
      try {
        new RegExp(p);
      } catch (err) {
        problems.push(`${at}.redact_patterns[${i}]: ${(err as Error).message}`);
      }
    });
  return {
    enabled: raw.enabled ?? base?.enabled ?? TOOL_DEFAULTS.enabled,
    allowDomains,
    denyDomains,
    allowIpLiterals: raw.allow_ip_literals ?? base?.allowIpLiterals ?? TOOL_DEFAULTS.allowIpLiterals,
    allowPrivate: raw.allow_private ?? base?.allowPrivate ?? TOOL_DEFAULTS.allowPrivate,
    allowCidrs,
    allowedMimeTypes,
    maxResponseBytes: raw.max_response_bytes ?? base?.maxResponseBytes ?? TOOL_DEFAULTS.maxResponseBytes,
    timeoutMs: raw.timeout_ms ?? base?.timeoutMs ?? TOOL_DEFAULTS.timeoutMs,
    maxRedirects: raw.max_redirects ?? base?.maxRedirects ?? TOOL_DEFAULTS.maxRedirects,
    ratePerSecond: raw.rate_per_s ?? base?.ratePerSecond ?? TOOL_DEFAULTS.ratePerSecond,
    burst: raw.burst ?? base?.burst ?? TOOL_DEFAULTS.burst,
    redactPatterns,
    redactEmails: raw.redact_emails ?? base?.redactEmails ?? TOOL_DEFAULTS.redactEmails,
  };
}

/** Applies the defaults of `tools:` and checks what the JSON Schema cannot; problems are appended. */
export function resolveToolsConfig(raw: RawToolsConfig | undefined, problems: string[]): ResolvedToolsConfig {
  const { tenants: rawTenants = [], forward_headers, search, ...rawDefaults } = raw ?? {};
  const defaults = policyOf(rawDefaults, undefined, 'tools', problems);
  const tenants = new Map<string, ToolPolicy>();
  rawTenants.forEach((t, i) => {
    const { id, ...override } = t;
    if (tenants.has(id)) problems.push(`tools.tenants[${i}].id: duplicate tenant '${id}'`);
    tenants.set(id, policyOf(override, defaults, `tools.tenants[${i}]`, problems));
  });
  const forwardHeaders = (forward_headers ?? TOOL_DEFAULTS.forwardHeaders).map((h) => h.trim().toLowerCase());
  forwardHeaders.forEach((h, i) => {
    if (!HEADER.test(h)) problems.push(`tools.forward_headers[${i}]: '${h}' is not a header name`);
  });
  if (search !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(
        search.provider === 'template'
          ? search.url.replaceAll(/\{(?:query|max_results)\}/g, 'x')
          : search.url,
      );
    } catch {
      url = undefined;
    }
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:'))
      problems.push(`tools.search.url: '${search.url}' is not an http(s) URL`);
    if (search.provider === 'template' && !search.url.includes('{query}'))
      problems.push('tools.search.url: a template needs a {query} placeholder');
  }
  return { defaults, tenants, forwardHeaders, search };
}

/** The policy that applies to `tenant`. */
export const toolPolicyOf = (tools: ResolvedToolsConfig, tenant: string): ToolPolicy =>
  tools.tenants.get(tenant) ?? tools.defaults;
