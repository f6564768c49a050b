/**
 * The OpenAPI documents at runtime: request validation compiles the schemas of
 * contracts/openapi/*.yaml (the same documents the TypeScript types are generated from).
 */
import { OrchError } from '../errors/orch-error.js';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsPlugin from 'ajv-formats';
import { parse } from 'yaml';
import type { components } from './generated/data.js';

export type TaskRequest = components['schemas']['TaskRequest'];

export interface OpenApiDocs {
  readonly data: OpenApiDocument;
  readonly control: OpenApiDocument;
  /** The OpenAI-compatible surface (SPEC §2.7). */
  readonly openai: OpenApiDocument;
}

export interface OpenApiDocument {
  readonly openapi: string;
  readonly info: { readonly version: string };
  readonly paths: Record<string, Record<string, unknown>>;
  readonly components: { readonly schemas: Record<string, unknown> } & Record<string, unknown>;
}

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; field: string; message: string };
export type TaskRequestValidator = (body: unknown) => ValidationResult<TaskRequest>;

/** The repository root: the nearest ancestor holding `contracts/openapi` (works from src and dist). */
export function contractsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'contracts', 'openapi');
    if (existsSync(candidate)) return candidate;
    const up = dirname(dir);
    if (up === dir) throw new Error('contracts/openapi not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

let cached: OpenApiDocs | undefined;
export function loadOpenApi(): OpenApiDocs {
  const dir = contractsDir();
  cached ??= {
    data: parse(readFileSync(join(dir, 'data.yaml'), 'utf8')) as OpenApiDocument,
    control: parse(readFileSync(join(dir, 'control.yaml'), 'utf8')) as OpenApiDocument,
    openai: parse(readFileSync(join(dir, 'openai.yaml'), 'utf8')) as OpenApiDocument,
  };
  return cached;
}

type FormatsPlugin = (ajv: Ajv) => Ajv;
// ajv-formats is CommonJS; under nodenext its function arrives as the module's `default`.
const addFormats: FormatsPlugin =
  (addFormatsPlugin as unknown as { default?: FormatsPlugin }).default ??
  (addFormatsPlugin as unknown as FormatsPlugin);

/** An Ajv instance holding one document's components, so `#/components/schemas/X` refs resolve. */
export function ajvFor(doc: OpenApiDocument, opts: { useDefaults: boolean }): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    strict: false,
    useDefaults: opts.useDefaults,
    discriminator: false,
  });
  addFormats(ajv);
  ajv.addSchema({ $id: 'doc', components: doc.components });
  return ajv;
}

export function schemaRef(name: string): { $ref: string } {
  return { $ref: `doc#/components/schemas/${name}` };
}

/** The field an Ajv error is about: the property path, or the missing / unknown property. */
export function errorField(e: ErrorObject): string {
  const base = e.instancePath
    .split('/')
    .slice(1)
    .map((s) => (/^\d+$/.test(s) ? `[${s}]` : s))
    .join('.')
    .replace(/\.\[/g, '[');
  const params = e.params as { missingProperty?: string; additionalProperty?: string };
  const leaf = params.missingProperty ?? params.additionalProperty;
  if (leaf !== undefined) return base === '' ? leaf : `${base}.${leaf}`;
  return base === '' ? '(body)' : base;
}

function describe(e: ErrorObject): string {
  switch (e.keyword) {
    case 'required':
      return 'is required';
    case 'additionalProperties':
      return 'is not a known field';
    case 'enum':
      return `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map(String).join(', ')}`;
    case 'format':
      return `must be a ${(e.params as { format: string }).format}`;
    default:
      return e.message ?? e.keyword;
  }
}

type OneOfProblem = { field: string; message: string };
const TASK_ONE_OF: OneOfProblem = {
  field: 'prompt',
  message: 'exactly one of `prompt` or `inputs` is required',
};

function firstProblem(
  errors: readonly ErrorObject[],
  oneOf: OneOfProblem,
): { field: string; message: string } {
  // Prefer a concrete field error over the schema's `oneOf` summary.
  const concrete = errors.filter((e) => !e.schemaPath.includes('/oneOf') && e.keyword !== 'oneOf');
  const e = concrete[0];
  if (e) return { field: errorField(e), message: describe(e) };
  return oneOf;
}

export function makeValidator<T>(
  validate: ValidateFunction,
  oneOf: OneOfProblem = TASK_ONE_OF,
): (body: unknown) => ValidationResult<T> {
  return (body) => {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      return { ok: false, field: '(body)', message: 'must be a JSON object' };
    }
    const copy: unknown = structuredClone(body);
    if (validate(copy)) return { ok: true, value: copy as T };
    return { ok: false, ...firstProblem(validate.errors ?? [], oneOf) };
  };
}

export function createRequestValidator(docs: OpenApiDocs): { validateTaskRequest: TaskRequestValidator } {
  const ajv = ajvFor(docs.data, { useDefaults: true });
  return { validateTaskRequest: makeValidator<TaskRequest>(ajv.compile(schemaRef('TaskRequest'))) };
}

/** What each control-plane request body must choose between, when it has a `oneOf`. */
const CONTROL_ONE_OF: Readonly<Record<string, OneOfProblem>> = {
  ReloadRequest: {
    field: 'new_model_ref',
    message: 'exactly one of `new_model_ref` or `rollback: true` is required',
  },
};

/** Validates control-plane bodies against control.yaml; throws INVALID_PARAMS naming the field. */
export function createControlValidator(docs: OpenApiDocs): (schema: string, body: unknown) => unknown {
  const ajv = ajvFor(docs.control, { useDefaults: true });
  const validators = new Map<string, (body: unknown) => ValidationResult<unknown>>();
  return (schema, body) => {
    let v = validators.get(schema);
    if (!v) {
      v = makeValidator<unknown>(
        ajv.compile(schemaRef(schema)),
        CONTROL_ONE_OF[schema] ?? { field: '(body)', message: 'is invalid' },
      );
      validators.set(schema, v);
    }
    const r = v(body ?? {});
    if (!r.ok) throw new OrchError('INVALID_PARAMS', `${r.field}: ${r.message}`);
    return r.value;
  };
}
