/**
 * Contract checks for tests: every response seen must be documented in contracts/openapi for its
 * operation and status, carry the documented required headers, and match the body schema.
 */
import type { Ajv } from 'ajv';
import { ajvFor, loadOpenApi, type OpenApiDocument } from '../../src/http/openapi.js';

interface ResponseObject {
  $ref?: string;
  headers?: Record<string, { $ref?: string; required?: boolean }>;
  content?: Record<string, { schema?: unknown }>;
}

const docs = loadOpenApi();
const ajvs = new Map<OpenApiDocument, Ajv>();
function ajv(doc: OpenApiDocument): Ajv {
  let a = ajvs.get(doc);
  if (!a) ajvs.set(doc, (a = ajvFor(doc, { useDefaults: false })));
  return a;
}

function resolveRef<T>(doc: OpenApiDocument, obj: T & { $ref?: string }): T {
  if (obj.$ref === undefined) return obj;
  const parts = obj.$ref.replace(/^#\//, '').split('/');
  let cur: unknown = doc;
  for (const p of parts) cur = (cur as Record<string, unknown>)[p];
  if (cur === undefined) throw new Error(`unresolved $ref ${obj.$ref}`);
  return resolveRef(doc, cur as T & { $ref?: string });
}

/** Rewrites local refs so they resolve inside the Ajv schema registered as `doc`. */
function rebase(schema: unknown): unknown {
  return JSON.parse(JSON.stringify(schema).replace(/"#\/components\//g, '"doc#/components/')) as unknown;
}

function findOperation(
  method: string,
  path: string,
): { doc: OpenApiDocument; template: string; op: Record<string, unknown> } {
  const concrete = path.split('?')[0] ?? path;
  for (const doc of [docs.data, docs.control, docs.openai]) {
    for (const [template, item] of Object.entries(doc.paths)) {
      const re = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`);
      if (template !== concrete && !re.test(concrete)) continue;
      const op = item[method.toLowerCase()] as Record<string, unknown> | undefined;
      if (op) return { doc, template, op };
    }
  }
  throw new Error(`${method} ${path} is not documented in contracts/openapi`);
}

export interface ResponseCheck {
  readonly method: string;
  /** A template path (`/v1/tasks/{id}/stream`) or a concrete one. */
  readonly path: string;
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly body: unknown;
}

export function expectValidResponse(r: ResponseCheck): void {
  const { doc, template, op } = findOperation(r.method, r.path);
  const responses = op['responses'] as Record<string, ResponseObject>;
  const declared = responses[String(r.status)] ?? responses['default'];
  const where = `${r.method} ${template} → ${r.status}`;
  if (!declared)
    throw new Error(`${where}: status not documented (documented: ${Object.keys(responses).join(', ')})`);
  const res = resolveRef(doc, declared);
  if (r.headers !== undefined) {
    const lower = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k.toLowerCase(), v]));
    for (const [name, h] of Object.entries(res.headers ?? {})) {
      const header = resolveRef(doc, h);
      if (header.required === true && lower[name.toLowerCase()] === undefined) {
        throw new Error(`${where}: required header ${name} missing`);
      }
    }
  }
  const json = res.content?.['application/json'];
  if (!json) {
    if (r.body !== undefined && r.body !== '')
      throw new Error(`${where}: documented without a JSON body, got ${JSON.stringify(r.body)}`);
    return;
  }
  const validate = ajv(doc).compile(rebase(json.schema) as object);
  if (!validate(r.body)) {
    throw new Error(
      `${where}: body does not match the schema: ${ajv(doc).errorsText(validate.errors)}\n${JSON.stringify(r.body)}`,
    );
  }
}

const SSE_SCHEMAS: Record<string, string> = {
  started: 'SseStarted',
  token: 'SseToken',
  metrics: 'SseMetrics',
  end: 'SseEnd',
  error: 'SseError',
};

export function expectValidSseEvent(name: string, data: unknown): void {
  const schema = SSE_SCHEMAS[name];
  if (schema === undefined) throw new Error(`SSE event '${name}' is not documented`);
  const a = ajv(docs.data);
  const validate = a.compile({ $ref: `doc#/components/schemas/${schema}` });
  if (!validate(data))
    throw new Error(`SSE ${name} payload does not match ${schema}: ${a.errorsText(validate.errors)}`);
}
