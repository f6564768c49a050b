/**
 * YAML file → validated `RawConfig` → `ResolvedConfig` (SPEC §13, ORCH-3030).
 * `strict` rejects unknown fields naming their path; `compat` drops them and reports each one.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parseDocument } from 'yaml';
import { ConfigError, resolveConfig, type ResolveOptions } from './resolve-config.js';
import type { ResolvedConfig } from './resolved-config.js';
import { configJsonSchema, type RawConfig } from './schema.js';

export interface LoadConfigResult {
  readonly config: ResolvedConfig;
  /** Unknown fields dropped in `compat` mode, as JSON-pointer-like paths (`pools[0].foo`). */
  readonly warnings: readonly string[];
}

let validator: ValidateFunction | undefined;
function getValidator(): ValidateFunction {
  validator ??= new Ajv({ allErrors: true, strict: false, useDefaults: false }).compile(configJsonSchema());
  return validator;
}

/** Reads, validates and resolves a config file. Throws `ConfigError` listing every problem. */
export async function loadConfigFile(
  file: string,
  opts: Omit<ResolveOptions, 'baseDir'> = {},
): Promise<LoadConfigResult> {
  const abs = resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    throw new ConfigError([`cannot read file: ${(err as Error).message}`], abs);
  }
  try {
    return parseConfig(text, { ...opts, baseDir: dirname(abs) });
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(err.problems, abs);
    throw err;
  }
}

/** Parses YAML text (relative paths resolve against `opts.baseDir`). */
export function parseConfig(text: string, opts: ResolveOptions = {}): LoadConfigResult {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) throw new ConfigError(doc.errors.map((e) => `yaml: ${e.message}`));
  const value: unknown = doc.toJS();
  return validateConfig(value, opts);
}

/** Validates an already-parsed document. */
export function validateConfig(value: unknown, opts: ResolveOptions = {}): LoadConfigResult {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(['(root): must be a mapping']);
  }
  const doc = structuredClone(value) as Record<string, unknown>;
  const mode = doc['config_mode'] === 'compat' ? 'compat' : 'strict';
  const warnings: string[] = [];
  const validate = getValidator();
  if (mode === 'compat') {
    // Drop unknown fields, reporting each, until only real problems remain.
    for (let round = 0; round < 32 && !validate(doc); round++) {
      const unknown = (validate.errors ?? []).filter((e) => e.keyword === 'additionalProperties');
      if (unknown.length === 0) break;
      for (const e of unknown) {
        const prop = (e.params as { additionalProperty: string }).additionalProperty;
        const parent = lookup(doc, e.instancePath);
        if (parent !== null && typeof parent === 'object') {
          delete (parent as Record<string, unknown>)[prop];
          warnings.push(`${joinPath(e.instancePath, prop)}: unknown field ignored (config_mode: compat)`);
        }
      }
    }
  }
  if (!validate(doc)) throw new ConfigError(formatErrors(validate.errors ?? []));
  return { config: resolveConfig(doc as RawConfig, opts), warnings };
}

function formatErrors(errors: readonly ErrorObject[]): string[] {
  const out = new Set<string>();
  for (const e of errors) {
    // Union alternatives produce noise; the `anyOf` summary line is enough.
    if (e.schemaPath.includes('/anyOf/')) continue;
    if (e.keyword === 'additionalProperties') {
      const prop = (e.params as { additionalProperty: string }).additionalProperty;
      out.add(`${joinPath(e.instancePath, prop)}: unknown field (config_mode: strict)`);
    } else if (e.keyword === 'required') {
      const prop = (e.params as { missingProperty: string }).missingProperty;
      out.add(`${joinPath(e.instancePath, prop)}: required field is missing`);
    } else if (e.keyword === 'enum') {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues.map(String).join(', ');
      out.add(`${pathOf(e.instancePath)}: must be one of ${allowed}`);
    } else {
      out.add(`${pathOf(e.instancePath)}: ${e.message ?? e.keyword}`);
    }
  }
  return [...out];
}

/** `/pools/0/queue` → `pools[0].queue`. */
function pathOf(pointer: string): string {
  if (pointer === '') return '(root)';
  return pointer
    .split('/')
    .slice(1)
    .map((seg) => seg.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, seg) => (/^\d+$/.test(seg) ? `${acc}[${seg}]` : acc === '' ? seg : `${acc}.${seg}`), '');
}

function joinPath(pointer: string, prop: string): string {
  const base = pathOf(pointer);
  return base === '(root)' ? prop : `${base}.${prop}`;
}

function lookup(root: unknown, pointer: string): unknown {
  let cur: unknown = root;
  for (const seg of pointer.split('/').slice(1)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return cur;
}
