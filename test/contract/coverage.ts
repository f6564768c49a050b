/**
 * Which (operation, status) pairs the OpenAPI documents declare, and which of them a pact file
 * holds an interaction for. Computed from `contracts/openapi/{data,control,openai}.yaml`: a status
 * added to a document needs an interaction, or the coverage tests fail.
 */
import { readFile } from 'node:fs/promises';
import { loadOpenApi } from '../../src/http/openapi.js';

/** One documented answer of one operation. */
export type ApiDocument = 'data' | 'control' | 'openai';

export interface DocumentedPair {
  readonly document: ApiDocument;
  readonly method: string;
  /** The path template as documented, e.g. `/v1/tasks/{id}/stream`. */
  readonly path: string;
  readonly status: number;
}

const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options']);

/** Every (operation, status) of `documents` (default: the data and control planes). */
export function documentedPairs(documents: readonly ApiDocument[] = ['data', 'control']): DocumentedPair[] {
  const docs = loadOpenApi();
  const out: DocumentedPair[] = [];
  for (const document of documents)
    for (const [path, item] of Object.entries(docs[document].paths))
      for (const [method, op] of Object.entries(item)) {
        if (!METHODS.has(method)) continue;
        const responses = (op as { responses?: Record<string, unknown> }).responses ?? {};
        for (const status of Object.keys(responses))
          out.push({ document, method: method.toUpperCase(), path, status: Number(status) });
      }
  return out;
}

/** The node endpoints: pool-managerd's contract, not the typed client's. */
export const isNodePath = (path: string): boolean => path.startsWith('/v1/nodes/');

const templateRegex = (path: string): RegExp =>
  new RegExp(`^${path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}/]+\}/g, '[^/]+')}$`);

interface PactFile {
  readonly interactions: readonly {
    readonly description: string;
    readonly request: { readonly method: string; readonly path: string };
    readonly response: { readonly status: number };
  }[];
}

export async function readPact(file: string): Promise<PactFile> {
  return JSON.parse(await readFile(file, 'utf8')) as PactFile;
}

const matches = (p: DocumentedPair, i: PactFile['interactions'][number]): boolean =>
  i.request.method === p.method &&
  i.response.status === p.status &&
  templateRegex(p.path).test(i.request.path);

/** Documented pairs without an interaction in the pact, as `METHOD /path STATUS (document)`. */
export function uncovered(pairs: readonly DocumentedPair[], pact: PactFile): string[] {
  return pairs
    .filter((p) => !pact.interactions.some((i) => matches(p, i)))
    .map((p) => `${p.method} ${p.path} ${p.status} (${p.document}.yaml)`);
}

/** Interactions whose (operation, status) no document declares: a contract the documents do not state. */
export function undocumented(pairs: readonly DocumentedPair[], pact: PactFile): string[] {
  return pact.interactions
    .filter((i) => !pairs.some((p) => matches(p, i)))
    .map((i) => `${i.request.method} ${i.request.path} ${i.response.status}: ${i.description}`);
}
