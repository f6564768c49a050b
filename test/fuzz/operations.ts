/**
 * Every operation of the three OpenAPI documents, flattened into what a fuzzer needs: the
 * method, the path template, its parameters, the request body schema and whose error shape
 * its refusals use.
 */
import { loadOpenApi, type OpenApiDocument } from '../../src/http/openapi.js';

/** Which document an operation comes from; it decides the error body shape and the keys. */
export type Plane = 'data' | 'control' | 'openai';

/** A parameter as the document declares it, with `$ref`s resolved. */
export interface FuzzParam {
  readonly name: string;
  readonly in: 'path' | 'query' | 'header';
  readonly required: boolean;
  readonly schema: Record<string, unknown>;
}

/** One (method, path) of a document. */
export interface FuzzOperation {
  readonly plane: Plane;
  readonly doc: OpenApiDocument;
  readonly operationId: string;
  readonly method: string;
  readonly path: string;
  readonly params: readonly FuzzParam[];
  /** The `application/json` request body schema, when the operation takes a body. */
  readonly body: Record<string, unknown> | undefined;
  /** False where the operation's own `security` allows no credential (`[]`, or a `{}` alternative). */
  readonly authenticated: boolean;
  /** The statuses the document declares. */
  readonly statuses: ReadonlySet<number>;
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

function deref(doc: OpenApiDocument, value: unknown): Record<string, unknown> {
  let v = value as Record<string, unknown>;
  for (let i = 0; i < 8 && typeof v['$ref'] === 'string'; i++) {
    const parts = v['$ref'].replace(/^#\//, '').split('/');
    let cur: unknown = doc;
    for (const p of parts) cur = (cur as Record<string, unknown>)[p];
    v = cur as Record<string, unknown>;
  }
  return v;
}

/**
 * Public routes the documents do not describe (the API reference itself), fuzzed like the rest:
 * their path parameters name files, which makes them a classic target.
 */
function referenceRoutes(doc: OpenApiDocument): FuzzOperation[] {
  const param: FuzzParam = {
    name: 'name',
    in: 'path',
    required: true,
    schema: { type: 'string', minLength: 1 },
  };
  const route = (operationId: string, path: string): FuzzOperation => ({
    plane: 'data',
    doc,
    operationId,
    method: 'GET',
    path,
    params: [param],
    body: undefined,
    authenticated: false,
    statuses: new Set([200, 404]),
  });
  return [route('getDocsAsset', '/docs/{name}'), route('getOpenApiDocument', '/openapi/{name}')];
}

/**
 * Every operation of data.yaml, control.yaml and openai.yaml, in document order, then the
 * API reference routes.
 */
export function fuzzOperations(): FuzzOperation[] {
  const docs = loadOpenApi();
  const out: FuzzOperation[] = [];
  for (const plane of ['data', 'control', 'openai'] as const) {
    const doc = docs[plane];
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of METHODS) {
        const raw = item[method] as Record<string, unknown> | undefined;
        if (raw === undefined) continue;
        const params = ((raw['parameters'] as unknown[] | undefined) ?? []).map((p): FuzzParam => {
          const d = deref(doc, p);
          return {
            name: d['name'] as string,
            in: d['in'] as FuzzParam['in'],
            required: d['required'] === true,
            schema: deref(doc, d['schema'] ?? {}),
          };
        });
        const rb = raw['requestBody'] as { content?: Record<string, { schema?: unknown }> } | undefined;
        const bodySchema = rb?.content?.['application/json']?.schema;
        const security = raw['security'] as unknown[] | undefined;
        out.push({
          plane,
          doc,
          operationId: raw['operationId'] as string,
          method: method.toUpperCase(),
          path,
          params,
          body: bodySchema === undefined ? undefined : (bodySchema as Record<string, unknown>),
          // An operation's own `security` with an empty alternative makes the credential optional.
          authenticated: !(
            Array.isArray(security) &&
            (security.length === 0 || security.some((alt) => Object.keys(alt as object).length === 0))
          ),
          statuses: new Set(Object.keys(raw['responses'] as object).map(Number)),
        });
      }
    }
  }
  out.push(...referenceRoutes(docs.data));
  return out;
}

/** `deref` for callers holding schemas of one document. */
export function resolveRef(doc: OpenApiDocument, schema: unknown): Record<string, unknown> {
  return deref(doc, schema);
}
