/**
 * Query-string validation from an operation's documented parameters: the OpenAPI document stays
 * the one place that says what a valid query is.
 */
import { Ajv } from 'ajv';
import { OrchError } from '../errors/orch-error.js';
import { errorField, type OpenApiDocument } from './openapi.js';

interface QueryParameter {
  readonly name: string;
  readonly in: string;
  readonly schema?: Record<string, unknown>;
}

/**
 * A parser for the query of `GET path`: coerces the values to their documented types, applies
 * defaults, and throws `INVALID_PARAMS` naming the parameter otherwise. Compiled once.
 */
export function queryParser<Q>(doc: OpenApiDocument, path: string): (raw: unknown) => Q {
  const op = doc.paths[path]?.['get'] as { parameters?: readonly QueryParameter[] } | undefined;
  const params = (op?.parameters ?? []).filter((p) => p.in === 'query');
  if (params.length === 0) throw new Error(`GET ${path} documents no query parameters`);
  // Query values arrive as strings: coerced to the documented types; a repeated one stays an
  // array and fails its scalar schema.
  const ajv = new Ajv({ strict: false, coerceTypes: true, useDefaults: true, allErrors: false });
  const validate = ajv.compile({
    type: 'object',
    properties: Object.fromEntries(params.map((p) => [p.name, p.schema ?? {}])),
  });
  return (raw) => {
    const query: Record<string, unknown> = { ...(raw as Record<string, unknown>) };
    if (!validate(query)) {
      const e = validate.errors?.[0];
      throw new OrchError(
        'INVALID_PARAMS',
        e ? `${errorField(e)}: ${e.message ?? e.keyword}` : 'invalid query',
      );
    }
    return query as Q;
  };
}
