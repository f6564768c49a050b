/**
 * The `plugins:` section of the configuration (SPEC §10, §13): its schema (part of the config's
 * JSON Schema) and its resolution. A plugin's `params` are checked against its manifest when the
 * module is loaded, not here: only the module knows its params schema.
 */
import { Type, type Static } from '@sinclair/typebox';
import { PRIORITIES, type Priority } from '../domain/types.js';
import type { ResolvedToolsConfig } from '../tools/tools-config.js';

/** Hooks a plugin may serve in ABI v1. */
export const PLUGIN_HOOKS = ['admission', 'placement'] as const;
export type PluginHook = (typeof PLUGIN_HOOKS)[number];

/** Host tools a plugin may be granted (`plugins[].tools.allow`). */
export const PLUGIN_TOOLS = ['fetch', 'search'] as const;
export type PluginTool = (typeof PLUGIN_TOOLS)[number];

export const PLUGIN_DEFAULTS = {
  budgetMs: 1,
  memoryMaxBytes: 16 * 1_048_576,
  quarantineAfter: 5,
  weightMin: 0.5,
  weightMax: 2,
  toolsTtlMs: 300_000,
} as const;

export const PluginSchema = Type.Object(
  {
    id: Type.String({
      pattern: '^[a-z0-9][a-z0-9._-]{0,63}$',
      description: "The plugin's id; must equal its manifest's `id`.",
    }),
    path: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'The WebAssembly module, relative to this file (its signature: `<path>.minisig`). Exactly one of `path` and `artifact`.',
      }),
    ),
    artifact: Type.Optional(
      Type.Object(
        {
          id: Type.String({
            pattern: '^sha256:[0-9a-f]{64}$',
            description: 'The artifact id (a content address): the module is loaded by digest.',
          }),
          tenant: Type.String({ minLength: 1, description: 'The tenant that owns the artifact.' }),
        },
        {
          additionalProperties: false,
          description:
            'The module from the artifact registry (SPEC §9): an artifact whose content is `{wasm_base64, minisig?}`, as `llorch plugins publish` stores it. Exactly one of `path` and `artifact`.',
        },
      ),
    ),
    sha256: Type.Optional(
      Type.String({
        pattern: '^[0-9a-f]{64}$',
        description: 'Pins the module: a module whose SHA-256 (hex) differs is refused at load.',
      }),
    ),
    hooks: Type.Array(
      Type.Unsafe<PluginHook>({ type: 'string', enum: [...PLUGIN_HOOKS], description: 'A hook.' }),
      {
        minItems: 1,
        uniqueItems: true,
        description: "Hooks this plugin is called for (each must be in its manifest's `hooks`).",
      },
    ),
    params: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: "Passed in every snapshot; validated against the manifest's params schema at load.",
        default: {},
      }),
    ),
    budget_ms: Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        maximum: 1_000,
        description:
          'Per-call budget; the call is ended (its worker terminated) after budget_ms plus the measured host allowance, and the built-in policy decides.',
        default: PLUGIN_DEFAULTS.budgetMs,
      }),
    ),
    memory_max_bytes: Type.Optional(
      Type.Integer({
        minimum: 65_536,
        description:
          'Cap on linear memory: a module declaring no memory maximum, or one above this, is refused at load.',
        default: PLUGIN_DEFAULTS.memoryMaxBytes,
      }),
    ),
    quarantine_after: Type.Optional(
      Type.Integer({
        minimum: 1,
        description:
          'Consecutive failed calls (timeout, trap, malformed decision) after which the plugin is quarantined.',
        default: PLUGIN_DEFAULTS.quarantineAfter,
      }),
    ),
    bounds: Type.Optional(
      Type.Object(
        {
          priorities: Type.Optional(
            Type.Array(
              Type.Unsafe<Priority>({ type: 'string', enum: [...PRIORITIES], description: 'A priority.' }),
              {
                uniqueItems: true,
                description: 'Priorities an admission adjustment may set. Default: all.',
              },
            ),
          ),
          weight_min: Type.Optional(
            Type.Number({
              exclusiveMinimum: 0,
              description: 'Least weight an adjustment may set.',
              default: PLUGIN_DEFAULTS.weightMin,
            }),
          ),
          weight_max: Type.Optional(
            Type.Number({
              exclusiveMinimum: 0,
              description: 'Largest weight an adjustment may set.',
              default: PLUGIN_DEFAULTS.weightMax,
            }),
          ),
        },
        { additionalProperties: false, description: 'What an admission adjustment may change.' },
      ),
    ),
    tools: Type.Optional(
      Type.Object(
        {
          tenant: Type.String({
            minLength: 1,
            description:
              "The tenant whose tool policy (`tools.tenants[]`, enabled) applies to this plugin's calls, and whose rate bound they spend.",
          }),
          allow: Type.Array(
            Type.Unsafe<PluginTool>({ type: 'string', enum: [...PLUGIN_TOOLS], description: 'A host tool.' }),
            {
              minItems: 1,
              uniqueItems: true,
              description:
                'Tools its decisions may ask for; a decision asking for another is malformed (the built-in policy decides).',
            },
          ),
          max_per_minute: Type.Optional(
            Type.Integer({
              minimum: 1,
              description:
                "Most tool calls this plugin makes in any minute, beyond the tenant's own rate bound; a request over it gets a `rate_limited` error result. Default: only the tenant's bound.",
            }),
          ),
          ttl_ms: Type.Optional(
            Type.Integer({
              minimum: 1,
              maximum: 86_400_000,
              description:
                'How long a result (or error) is kept and passed in snapshots; a request with the same id is not run again until it expires.',
              default: PLUGIN_DEFAULTS.toolsTtlMs,
            }),
          ),
        },
        {
          additionalProperties: false,
          description:
            "Host tools this plugin's decisions may ask for (docs/plugins.md, Host tools): run after the decision applies, through the tool proxy, results in later snapshots.",
        },
      ),
    ),
  },
  { additionalProperties: false, description: 'A WebAssembly policy plugin (SPEC §10).' },
);

export const PluginsSchema = Type.Array(PluginSchema, {
  description: 'Policy plugins (SPEC §10), called in this order at each hook.',
  default: [],
});

export type RawPlugin = Static<typeof PluginSchema>;

/** Where a plugin's module comes from: a file, or an artifact of the registry (by digest). */
export type PluginSource =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'artifact'; readonly id: string; readonly tenant: string };

/** The host tools granted to a plugin (`plugins[].tools`), defaults applied. */
export interface PluginToolGrant {
  readonly tenant: string;
  readonly allow: readonly PluginTool[];
  readonly maxPerMinute: number | undefined;
  readonly ttlMs: number;
}

/** One configured plugin, defaults applied and its path absolute. */
export interface ResolvedPlugin {
  readonly id: string;
  readonly source: PluginSource;
  readonly sha256: string | undefined;
  readonly hooks: readonly PluginHook[];
  readonly params: Readonly<Record<string, unknown>>;
  readonly budgetMs: number;
  readonly memoryMaxBytes: number;
  readonly quarantineAfter: number;
  readonly bounds: {
    readonly priorities: readonly Priority[];
    readonly weightMin: number;
    readonly weightMax: number;
  };
  /** Undefined: the plugin may ask for no host tool. */
  readonly tools?: PluginToolGrant;
}

/**
 * Resolves `plugins:`, pushing cross-field problems (with their path) onto `problems`; a tools
 * grant is checked against `tools` (the resolved `tools:` section).
 */
export function resolvePlugins(
  raw: readonly RawPlugin[] | undefined,
  toPath: (p: string) => string,
  problems: string[],
  tools?: ResolvedToolsConfig,
): ResolvedPlugin[] {
  const seen = new Set<string>();
  return (raw ?? []).map((p, i) => {
    if (seen.has(p.id)) problems.push(`plugins[${i}].id: '${p.id}' is configured twice`);
    seen.add(p.id);
    const weightMin = p.bounds?.weight_min ?? PLUGIN_DEFAULTS.weightMin;
    const weightMax = p.bounds?.weight_max ?? PLUGIN_DEFAULTS.weightMax;
    if (weightMin > weightMax)
      problems.push(`plugins[${i}].bounds: weight_min ${weightMin} exceeds weight_max ${weightMax}`);
    if ((p.path === undefined) === (p.artifact === undefined))
      problems.push(`plugins[${i}]: give exactly one of path and artifact (the module's source)`);
    return {
      id: p.id,
      source:
        p.artifact === undefined
          ? { kind: 'file', path: toPath(p.path ?? '') }
          : { kind: 'artifact', id: p.artifact.id, tenant: p.artifact.tenant },
      sha256: p.sha256,
      hooks: [...p.hooks],
      params: { ...(p.params ?? {}) },
      budgetMs: p.budget_ms ?? PLUGIN_DEFAULTS.budgetMs,
      memoryMaxBytes: p.memory_max_bytes ?? PLUGIN_DEFAULTS.memoryMaxBytes,
      quarantineAfter: p.quarantine_after ?? PLUGIN_DEFAULTS.quarantineAfter,
      bounds: { priorities: [...(p.bounds?.priorities ?? PRIORITIES)], weightMin, weightMax },
      ...(p.tools === undefined
        ? {}
        : { tools: resolveGrant(p.tools, `plugins[${i}].tools`, tools, problems) }),
    };
  });
}

function resolveGrant(
  raw: NonNullable<RawPlugin['tools']>,
  at: string,
  tools: ResolvedToolsConfig | undefined,
  problems: string[],
): PluginToolGrant {
  // Only an explicit tenant entry: the defaults are for clients, not a grant to a plugin.
  const policy = tools?.tenants.get(raw.tenant);
  if (policy === undefined)
    problems.push(`${at}.tenant: tenant '${raw.tenant}' has no tool policy (add it to tools.tenants)`);
  else if (!policy.enabled)
    problems.push(
      `${at}.tenant: the tool proxy is disabled for tenant '${raw.tenant}' (tools.tenants[].enabled)`,
    );
  if (raw.allow.includes('search') && tools?.search === undefined)
    problems.push(`${at}.allow: 'search' needs a search provider (tools.search)`);
  return {
    tenant: raw.tenant,
    allow: [...raw.allow],
    maxPerMinute: raw.max_per_minute,
    ttlMs: raw.ttl_ms ?? PLUGIN_DEFAULTS.toolsTtlMs,
  };
}
