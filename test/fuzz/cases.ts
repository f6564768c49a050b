/**
 * Fuzz cases: a small, printable plan per request (which operation, which credential, which
 * path, query, headers and body mutation), and the HTTP request built from it. Plans stay small
 * even when the request is not (a 3,000-level nesting is `deep ×3000`), so fast-check can shrink
 * and print them. Building a request also judges it: the reasons it is invalid, if any, after
 * which only a 4xx answer is right.
 */
import fc from 'fast-check';
import type { ValidateFunction } from 'ajv';
import { ajvFor, schemaRef, type OpenApiDocument } from '../../src/http/openapi.js';
import { schemaArbitrary, type Hints } from './schema-arbitrary.js';
import type { FuzzOperation, FuzzParam } from './operations.js';

/** What the `Authorization` header carries. */
export type AuthChoice = 'valid' | 'other-plane' | 'unknown-key' | 'missing' | 'basic' | 'empty-bearer';

export type Mutation =
  | { readonly kind: 'wrong-type'; readonly at: number; readonly value: unknown }
  | { readonly kind: 'delete'; readonly at: number }
  | { readonly kind: 'extra'; readonly at: number; readonly key: string; readonly value: unknown }
  | { readonly kind: 'deep'; readonly at: number; readonly depth: number; readonly shape: 'array' | 'object' }
  | { readonly kind: 'huge'; readonly at: number; readonly length: number }
  | { readonly kind: 'wide'; readonly at: number; readonly items: number }
  | { readonly kind: 'raw-number'; readonly at: number; readonly token: string };

export type BodyPlan =
  | { readonly kind: 'none' }
  | { readonly kind: 'json'; readonly value: unknown; readonly mutation: Mutation | null }
  | { readonly kind: 'raw'; readonly text: string };

/** One request, as data fast-check generates, shrinks and prints. */
export interface CasePlan {
  readonly op: string;
  readonly auth: AuthChoice;
  /** Path parameter values exactly as they go on the wire (already %-encoded, or deliberately not). */
  readonly pathParams: readonly string[];
  /** Query pairs as they go on the wire, repeats allowed. */
  readonly query: readonly (readonly [string, string])[];
  readonly headers: Readonly<Record<string, string>>;
  readonly body: BodyPlan;
}

/** What the orchestrator under test holds, so valid-looking values can name it. */
export interface FuzzWorld {
  /** Pools and the engine of each (model id = pool id). */
  readonly pools: Readonly<Record<string, string>>;
  /** A pool the control operations may drain and reload without starving the data plane. */
  readonly sparePool: string;
  readonly keys: { readonly data: string; readonly control: string };
  readonly node: { readonly id: string; readonly credential: string };
  /** Task and session ids reused across cases, so streams, cancels and sessions find something. */
  readonly taskIds: readonly string[];
  readonly sessionIds: readonly string[];
  readonly catalogIds: readonly string[];
}

/** A request ready to send, with the judgement made while building it. */
export interface BuiltRequest {
  readonly op: FuzzOperation;
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string | undefined;
  /** Why the request is invalid (empty: it may be valid). */
  readonly invalid: readonly string[];
  /**
   * The credential is not a configured key (or absent) and the path is a valid one:
   * authentication comes first, so the answer must be 401 or 403 whatever else is wrong.
   */
  readonly unauthenticated: boolean;
  /** The mutation, in words, for failure messages. */
  readonly note: string;
}

/** Path values that have broken routers before: traversal, prototype keys, encodings, lengths. */
const JUNK_PATH = [
  '..',
  '.',
  '%2e%2e',
  'constructor',
  '__proto__',
  'hasOwnProperty',
  'toString',
  '%',
  '%zz',
  '%c3%28',
  '%ff',
  '%00',
  'a%2Fb',
  '%E2%82%AC',
  '%F0%9F%98%80',
  'x'.repeat(101),
  'x'.repeat(129),
  'x'.repeat(257),
  'x'.repeat(513),
  'sha256:' + '0'.repeat(64),
  '%20',
  '~',
  '*',
] as const;

const JUNK_QUERY_VALUES = [
  '',
  'abc',
  '-1',
  '0',
  '1.5',
  '1e999',
  '1e3',
  '99999999999999999999',
  '1001',
  '%zz',
  '%',
  '[]',
  'constructor',
  '__proto__',
  'true',
  'x'.repeat(2000),
] as const;

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/json; charset=latin1',
  'application/vnd.api+json',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  'application/json, text/plain',
  ';',
] as const;

/** Content types the server refuses for a JSON body (anything that is not JSON at all). */
const NOT_JSON = new Set([
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
]);

const JUNK_HEADER = [
  '',
  ' ',
  'x'.repeat(129),
  'x'.repeat(4000),
  'has space',
  'caf\u00e9',
  '<script>',
  '../../etc/passwd',
  '0',
  '-1',
  '1e999',
  '99999999999999999999',
  'null',
  'constructor',
] as const;

const RAW_BODIES = [
  '',
  '{',
  '}',
  '[',
  'null',
  'true',
  '0',
  '"x"',
  '[]',
  '{"a":}',
  "{'a':1}",
  '{"a":1,}',
  'NaN',
  '{"a":NaN}',
  '{"a":Infinity}',
  '{"a":-Infinity}',
  '{"a":1e999}',
  '{"__proto__":{"x":1}}',
  '{"constructor":{"prototype":{"x":1}}}',
  '\u0000',
  '\ufeff{}',
  '{"a":"\\ud800"}',
  '{"a":1}{"b":2}',
] as const;

const RAW_NUMBERS = ['1e999', '-1e999', 'NaN', 'Infinity', '1e-999', '-0', '123456789012345678901234567890'];
/** Tokens no JSON value can stand for (not JSON at all, or beyond a double). */
const UNREPRESENTABLE = new Set(['1e999', '-1e999', 'NaN', 'Infinity']);

const JSON_JUNK: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, '', 'x', [], {}, [null], { a: 1 }),
  fc.string({ maxLength: 8 }),
  fc.integer(),
  fc.jsonValue({ maxDepth: 2 }),
);

/** The paths (as key lists) of every node of a JSON value, root first. */
export function jsonPaths(value: unknown, prefix: readonly (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [[...prefix]];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...jsonPaths(v, [...prefix, i])));
  else if (value !== null && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) out.push(...jsonPaths(v, [...prefix, k]));
  return out;
}

function showPath(path: readonly (string | number)[]): string {
  if (path.length === 0) return '(body)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

function setAt(root: unknown, path: readonly (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path as [string | number, ...(string | number)[]];
  if (Array.isArray(root)) {
    const copy = [...(root as unknown[])];
    copy[head as number] = setAt(copy[head as number], rest, value);
    return copy;
  }
  const obj = { ...(root as Record<string, unknown>) };
  obj[head] = setAt(obj[head], rest, value);
  return obj;
}

function deleteAt(root: unknown, path: readonly (string | number)[]): unknown {
  if (path.length === 0) return undefined;
  if (path.length === 1) {
    if (Array.isArray(root)) return (root as unknown[]).filter((_, i) => i !== path[0]);
    const obj = { ...(root as Record<string, unknown>) };
    delete obj[path[0] as string];
    return obj;
  }
  const [head, ...rest] = path as [string | number, ...(string | number)[]];
  const inner = (root as Record<string | number, unknown>)[head];
  return setAt(root, [head], deleteAt(inner, rest));
}

function getAt(root: unknown, path: readonly (string | number)[]): unknown {
  let cur = root;
  for (const p of path) cur = (cur as Record<string | number, unknown>)[p];
  return cur;
}

const PLACEHOLDER = '\u0001fuzz-raw\u0001';

/** The body text of a JSON plan, and the mutation in words. */
export function renderJsonBody(value: unknown, mutation: Mutation | null): { text: string; note: string } {
  if (mutation === null) return { text: JSON.stringify(value) ?? '', note: 'schema-shaped' };
  const paths = jsonPaths(value);
  const path = paths[mutation.at % paths.length] ?? [];
  const where = showPath(path);
  const raw = (replacement: string) =>
    (JSON.stringify(setAt(value, path, PLACEHOLDER)) ?? '').replace(JSON.stringify(PLACEHOLDER), replacement);
  switch (mutation.kind) {
    case 'wrong-type':
      return {
        text: JSON.stringify(setAt(value, path, mutation.value)) ?? '',
        note: `${where} := ${JSON.stringify(mutation.value)}`,
      };
    case 'delete':
      return { text: JSON.stringify(deleteAt(value, path)) ?? '', note: `delete ${where}` };
    case 'extra': {
      const target = getAt(value, path);
      if (target === null || typeof target !== 'object' || Array.isArray(target))
        return { text: JSON.stringify(value) ?? '', note: 'schema-shaped' };
      return {
        text: JSON.stringify(setAt(value, path, { ...target, [mutation.key]: mutation.value })) ?? '',
        note: `${where}.${mutation.key} := ${JSON.stringify(mutation.value)} (extra field)`,
      };
    }
    case 'deep': {
      const d = mutation.depth;
      const nested =
        mutation.shape === 'array' ? '['.repeat(d) + ']'.repeat(d) : '{"a":'.repeat(d) + '1' + '}'.repeat(d);
      return { text: raw(nested), note: `${where} := ${mutation.shape} nested ${d} deep` };
    }
    case 'huge':
      return {
        text: JSON.stringify(setAt(value, path, 'x'.repeat(mutation.length))) ?? '',
        note: `${where} := "x" × ${mutation.length}`,
      };
    case 'raw-number':
      return { text: raw(mutation.token), note: `${where} := ${mutation.token} (raw JSON text)` };
    case 'wide':
      return {
        text: raw('[' + Array.from({ length: mutation.items }, () => '"a"').join(',') + ']'),
        note: `${where} := ["a" × ${mutation.items}]`,
      };
  }
}

function wireString(s: string): string {
  return encodeURIComponent(s);
}

/** A value for a path parameter: a valid-looking one (often), or junk. */
function pathValue(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 6, arbitrary: valid.map(wireString) },
    { weight: 3, arbitrary: fc.constantFrom(...JUNK_PATH) },
    { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' }).map(wireString) },
  );
}

const uuidArb = fc.uuid();

/** Which ids a path parameter of this operation should name to reach real things. */
function pathHint(op: FuzzOperation, world: FuzzWorld): fc.Arbitrary<string> {
  const p = op.path;
  if (p.startsWith('/v1/tasks/')) return fc.oneof(fc.constantFrom(...world.taskIds), uuidArb);
  if (p.startsWith('/v1/sessions/')) return fc.oneof(fc.constantFrom(...world.sessionIds), uuidArb);
  // Drains, reloads and lifecycle moves touch only things no data-plane case depends on.
  if (p.startsWith('/v1/pools/') && op.method === 'GET')
    return fc.constantFrom(world.sparePool, 'nope', ...Object.keys(world.pools));
  if (p.startsWith('/v1/pools/')) return fc.constantFrom(world.sparePool, 'nope');
  if (p.startsWith('/v1/catalog/') && op.method === 'POST')
    return fc.constantFrom(...world.catalogIds.filter((id) => !(id in world.pools)), 'nope');
  if (p.startsWith('/v1/nodes/')) return fc.constantFrom(world.node.id, 'other-node');
  if (p.startsWith('/v1/catalog/')) return fc.constantFrom(...world.catalogIds, 'nope');
  if (p.startsWith('/v1/artifacts/'))
    return fc.oneof(
      fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `sha256:${h}`),
      fc.constant('nope'),
    );
  if (p.startsWith('/v1/models/')) return fc.constantFrom(...Object.keys(world.pools), 'nope');
  if (p.startsWith('/docs/')) return fc.constantFrom('swagger-ui.css', 'favicon-32x32.png', 'nope.js');
  if (p.startsWith('/openapi/')) return fc.constantFrom('data.yaml', 'openai.yaml', 'nope.yaml');
  return fc.string({ minLength: 1, maxLength: 16 });
}

/** Body generators aimed at the orchestrator under test (its models, engines, ids). */
function bodyHints(op: FuzzOperation, world: FuzzWorld): Hints {
  const models = [...Object.keys(world.pools), 'nope', 'sha256:' + 'a'.repeat(64)];
  const smallInt = (max: number) => fc.integer({ min: 1, max });
  const common: Record<string, fc.Arbitrary<unknown>> = {
    task_id: fc.oneof(fc.constantFrom(...world.taskIds), uuidArb),
    session_id: fc.oneof(fc.constantFrom(...world.sessionIds), uuidArb),
    model_ref: fc.constantFrom(...models),
    model: fc.constantFrom(...models),
    ctx: fc.constantFrom(64, 512, 2048, 4096),
    max_tokens: smallInt(16),
    max_completion_tokens: smallInt(16),
    deadline_ms: fc.constantFrom(1, 1_000, 60_000),
    expected_tokens: smallInt(16),
    prompt:
      op.plane === 'openai'
        ? fc.oneof(fc.string({ maxLength: 40 }), fc.array(fc.string(), { minLength: 1, maxLength: 1 }))
        : fc.string({ maxLength: 40 }),
    inputs: fc.array(fc.string({ maxLength: 16 }), { minLength: 1, maxLength: 3 }),
    new_model_ref: fc.constantFrom(
      'fz-cat-a',
      'nope',
      '/nonexistent/model.gguf',
      'file:///nonexistent',
      'tag:x',
    ),
    source: fc.constantFrom(
      '/nonexistent/model.gguf',
      'file:///nonexistent/m.gguf',
      'file://otherhost/m.gguf',
      'relative.gguf',
      'https://127.0.0.1:9/m.gguf',
    ),
    sampler_profile_version: fc.constantFrom('v1', 'v1', 'v0', 'v2'),
    canary_of: fc.constantFrom(...world.catalogIds),
    node_id: fc.constantFrom(world.node.id, 'other-node'),
    pool_id: fc.constantFrom(...Object.keys(world.pools), 'nope'),
    parent: fc.constantFrom('sha256:' + '0'.repeat(64), 'nope'),
    base_url: fc.constantFrom('http://127.0.0.1:9', 'not a url'),
    metrics_url: fc.constantFrom('http://127.0.0.1:9/metrics', 'not a url'),
  };
  if (op.path === '/v1/catalog/models' && op.method === 'POST')
    common['id'] = fc.constantFrom(...world.catalogIds, 'fz-cat-new');
  if (op.plane === 'openai') common['stream'] = fc.constantFrom(false, true, null);
  return common;
}

/** An engine consistent with the model, most of the time: admission is reached, not just schema. */
function coherent(world: FuzzWorld, value: unknown, fix: boolean): unknown {
  if (!fix || value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const v = value as Record<string, unknown>;
  const engine = typeof v['model_ref'] === 'string' ? world.pools[v['model_ref']] : undefined;
  if (engine === undefined || !('engine' in v)) return value;
  const out: Record<string, unknown> = { ...v, engine };
  if (v['model_ref'] === 'fz-embed' && 'inputs' in v) out['workload'] = 'embedding';
  return out;
}

function mutationArb(): fc.Arbitrary<Mutation> {
  const at = fc.nat({ max: 200 });
  return fc.oneof(
    fc.record({ kind: fc.constant('wrong-type' as const), at, value: JSON_JUNK }),
    fc.record({ kind: fc.constant('delete' as const), at }),
    fc.record({
      kind: fc.constant('extra' as const),
      at,
      key: fc.constantFrom('unknown_field', '__proto__', 'constructor', 'tenant', 'x'.repeat(300)),
      value: JSON_JUNK,
    }),
    fc.record({
      kind: fc.constant('deep' as const),
      at,
      depth: fc.constantFrom(8, 64, 200, 500, 1000, 3000),
      shape: fc.constantFrom('array' as const, 'object' as const),
    }),
    fc.record({
      kind: fc.constant('huge' as const),
      at,
      length: fc.constantFrom(10_000, 100_000, 600_000, 1_100_000),
    }),
    fc.record({ kind: fc.constant('raw-number' as const), at, token: fc.constantFrom(...RAW_NUMBERS) }),
    fc.record({ kind: fc.constant('wide' as const), at, items: fc.constantFrom(100, 5_000, 200_000) }),
  );
}

function queryArb(op: FuzzOperation): fc.Arbitrary<(readonly [string, string])[]> {
  const declared = op.params.filter((p) => p.in === 'query');
  const names = [...declared.map((p) => p.name), 'x', '__proto__'];
  const validFor = (name: string): fc.Arbitrary<string> => {
    const p = declared.find((d) => d.name === name);
    if (p?.schema['type'] === 'integer')
      return fc
        .integer({
          min: (p.schema['minimum'] as number | undefined) ?? 0,
          max: (p.schema['maximum'] as number | undefined) ?? 1000,
        })
        .map(String);
    return fc.string({ maxLength: 12 }).map(wireString);
  };
  const pair = fc
    .constantFrom(...names)
    .chain((name) =>
      fc.tuple(
        fc.constant(name),
        fc.oneof(
          { weight: 3, arbitrary: validFor(name) },
          { weight: 2, arbitrary: fc.constantFrom(...JUNK_QUERY_VALUES) },
        ),
      ),
    );
  return fc.array(pair, { maxLength: declared.length > 0 ? 4 : 1 });
}

function headerArb(op: FuzzOperation): fc.Arbitrary<Record<string, string>> {
  const junk = fc.constantFrom(...JUNK_HEADER);
  const model: Record<string, fc.Arbitrary<string>> = {
    'x-correlation-id': fc.oneof(fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/), junk),
  };
  if (op.body !== undefined || op.method === 'POST')
    model['content-type'] = fc.constantFrom(...CONTENT_TYPES);
  if (op.params.some((p) => p.name === 'Last-Event-ID'))
    model['last-event-id'] = fc.oneof(fc.constantFrom('0', '1', '3', '1000000'), junk);
  if (op.plane === 'openai' && op.method === 'POST') {
    model['x-llorch-priority'] = fc.oneof(fc.constantFrom('interactive', 'batch'), junk);
    model['x-llorch-deadline-ms'] = fc.oneof(fc.constantFrom('1', '1000', '60000', '9007199254740991'), junk);
    model['x-llorch-session'] = fc.oneof(
      fc.uuid(),
      fc.string({ minLength: 1, maxLength: 20 }).filter((s) => /^[\x21-\x7e]+$/.test(s)),
      junk,
    );
  }
  return fc.record(model, { requiredKeys: [] }) as fc.Arbitrary<Record<string, string>>;
}

function bodyArb(op: FuzzOperation, world: FuzzWorld): fc.Arbitrary<BodyPlan> {
  const raw = fc.constantFrom(...RAW_BODIES).map((text): BodyPlan => ({ kind: 'raw', text }));
  const none = fc.constant<BodyPlan>({ kind: 'none' });
  if (op.body === undefined) {
    if (op.method !== 'POST') return none;
    return fc.oneof(
      { weight: 6, arbitrary: none },
      { weight: 1, arbitrary: raw },
      { weight: 1, arbitrary: JSON_JUNK.map((value): BodyPlan => ({ kind: 'json', value, mutation: null })) },
    );
  }
  const shaped = fc
    .tuple(schemaArbitrary(op.doc, op.body, bodyHints(op, world)), fc.boolean())
    .map(([v, fix]) => coherent(world, v, fix));
  return fc.oneof(
    { weight: 5, arbitrary: shaped.map((value): BodyPlan => ({ kind: 'json', value, mutation: null })) },
    {
      weight: 6,
      arbitrary: fc
        .tuple(shaped, mutationArb())
        .map(([value, mutation]): BodyPlan => ({ kind: 'json', value, mutation })),
    },
    { weight: 1, arbitrary: raw },
    { weight: 1, arbitrary: none },
  );
}

/** Plans over every operation (`ops`), aimed at `world`. */
export function planArbitrary(ops: readonly FuzzOperation[], world: FuzzWorld): fc.Arbitrary<CasePlan> {
  const auth = fc.oneof(
    { weight: 12, arbitrary: fc.constant<AuthChoice>('valid') },
    {
      weight: 3,
      arbitrary: fc.constantFrom<AuthChoice>(
        'other-plane',
        'unknown-key',
        'missing',
        'basic',
        'empty-bearer',
      ),
    },
  );
  return fc.constantFrom(...ops).chain((op) =>
    fc.record({
      op: fc.constant(op.operationId),
      auth,
      pathParams: fc.tuple(
        ...op.params.filter((p) => p.in === 'path').map(() => pathValue(pathHint(op, world))),
      ),
      query: queryArb(op),
      headers: headerArb(op),
      body: bodyArb(op, world),
    }),
  );
}

const validators = new Map<string, ValidateFunction>();
function validatorFor(doc: OpenApiDocument, key: string, schema: unknown): ValidateFunction {
  let v = validators.get(key);
  if (!v) {
    const ajv = ajvFor(doc, { useDefaults: false });
    const ref = (schema as { $ref?: string }).$ref;
    v = ajv.compile(ref === undefined ? (schema as object) : schemaRef(ref.split('/').pop() ?? ''));
    validators.set(key, v);
  }
  return v;
}

function conforms(v: ValidateFunction, value: unknown): boolean {
  return v(value) === true;
}

function decodes(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

function authHeader(op: FuzzOperation, world: FuzzWorld, choice: AuthChoice): string | undefined {
  const own = op.path.startsWith('/v1/nodes/')
    ? world.node.credential
    : op.plane === 'control'
      ? world.keys.control
      : world.keys.data;
  const other = op.plane === 'control' ? world.keys.data : world.keys.control;
  switch (choice) {
    case 'valid':
      return `Bearer ${own}`;
    case 'other-plane':
      return `Bearer ${other}`;
    case 'unknown-key':
      return 'Bearer not-a-configured-key';
    case 'missing':
      return undefined;
    case 'basic':
      return `Basic ${Buffer.from(`user:${own}`).toString('base64')}`;
    case 'empty-bearer':
      return 'Bearer ';
  }
}

function paramInvalid(doc: OpenApiDocument, op: FuzzOperation, p: FuzzParam, value: string): boolean {
  const v = validatorFor(doc, `${op.operationId}:${p.in}:${p.name}`, p.schema);
  const typed = p.schema['type'] === 'integer' ? (/^-?\d+$/.test(value) ? Number(value) : value) : value;
  return !v(typed);
}

/** The request a plan stands for, and whether it is invalid. */
export function buildRequest(ops: readonly FuzzOperation[], world: FuzzWorld, plan: CasePlan): BuiltRequest {
  const op = ops.find((o) => o.operationId === plan.op);
  if (!op) throw new Error(`unknown operation ${plan.op}`);
  const invalid: string[] = [];
  const pathParams = op.params.filter((p) => p.in === 'path');
  let i = 0;
  const path = op.path.replace(/\{[^}]+\}/g, () => {
    const wire = plan.pathParams[i] ?? '';
    const p = pathParams[i++];
    const decoded = decodes(wire);
    if (decoded === undefined) invalid.push(`path parameter ${wire.slice(0, 20)} is not valid %-encoding`);
    else if (p && !conforms(validatorFor(op.doc, `${op.operationId}:path:${p.name}`, p.schema), decoded))
      invalid.push(`path parameter breaks its schema (${decoded.length} characters)`);
    return wire;
  });
  const query = plan.query.map(([k, v]) => `${encodeURIComponent(k)}=${v}`).join('&');
  const seen = new Map<string, number>();
  for (const [k, v] of plan.query) {
    seen.set(k, (seen.get(k) ?? 0) + 1);
    const p = op.params.find((d) => d.in === 'query' && d.name === k);
    if (!p) continue;
    const decoded = decodes(v);
    // A malformed escape in a query value is read leniently (as written); only values are judged.
    if (decoded !== undefined && paramInvalid(op.doc, op, p, decoded))
      invalid.push(`query ${k}=${decoded.slice(0, 20)} breaks its schema`);
  }
  for (const [k, n] of seen)
    if (n > 1 && op.params.some((d) => d.in === 'query' && d.name === k && d.schema['type'] !== 'array'))
      invalid.push(`query ${k} repeated ${n} times`);

  const pathValid = invalid.length === 0;
  const headers: Record<string, string> = {};
  const auth = authHeader(op, world, plan.auth);
  if (auth !== undefined) headers['authorization'] = auth;
  // Artifacts take any key of the tenant (control.yaml), and the task list a data key (its tenant's
  // tasks) or a control key (every tenant's; data.yaml): a key of either plane is no wrong credential.
  const anyKey =
    (op.path.startsWith('/v1/artifacts') || op.operationId === 'listTasks') && plan.auth === 'other-plane';
  if (op.authenticated && plan.auth !== 'valid' && !anyKey) invalid.push(`credential: ${plan.auth}`);
  // A key of the other plane is authenticated; its scope may be checked after the body is read.
  const unauthenticated =
    op.authenticated && plan.auth !== 'valid' && plan.auth !== 'other-plane' && pathValid;
  for (const [k, v] of Object.entries(plan.headers)) {
    headers[k] = v;
    const p = op.params.find((d) => d.in === 'header' && d.name.toLowerCase() === k);
    if (p && k.startsWith('x-llorch-') && paramInvalid(op.doc, op, p, v))
      invalid.push(`header ${k}: ${v.slice(0, 20)}`);
  }

  let body: string | undefined;
  let note = 'no body';
  switch (plan.body.kind) {
    case 'none':
      break;
    case 'raw':
      body = plan.body.text;
      note = `raw body ${JSON.stringify(plan.body.text)}`;
      break;
    case 'json': {
      const r = renderJsonBody(plan.body.value, plan.body.mutation);
      body = r.text;
      note = r.note;
      break;
    }
  }
  if (body !== undefined && headers['content-type'] === undefined)
    headers['content-type'] = 'application/json';
  if (op.body !== undefined) {
    if (body === undefined || body === '') invalid.push('the required body is missing');
    else {
      if (NOT_JSON.has(headers['content-type'] ?? ''))
        invalid.push(`content-type ${headers['content-type']}`);
      const mutation = plan.body.kind === 'json' ? plan.body.mutation : null;
      if (mutation?.kind === 'raw-number' && UNREPRESENTABLE.has(mutation.token))
        invalid.push(`body holds ${mutation.token}`);
      let parsed: unknown;
      let ok = true;
      try {
        parsed = JSON.parse(body);
      } catch {
        ok = false;
        invalid.push('the body is not JSON');
      }
      if (ok && !conforms(validatorFor(op.doc, `${op.operationId}:body`, op.body), parsed))
        invalid.push('the body breaks its schema');
      // Beyond the schema: the only sampler profile there is (SPEC §17) is `v1`.
      const profile = (parsed as Record<string, unknown> | null)?.['sampler_profile_version'];
      if (ok && op.operationId === 'enqueueTask' && profile !== undefined && profile !== 'v1')
        invalid.push(`unknown sampler_profile_version ${JSON.stringify(profile)}`);
    }
  }
  return {
    op,
    method: op.method,
    path: query === '' ? path : `${path}?${query}`,
    headers,
    body,
    invalid,
    unauthenticated,
    note,
  };
}

/** A request in a few readable lines (bodies cut to their first and last characters). */
export function describeRequest(req: BuiltRequest): string {
  const lines = [
    `${req.method} ${req.path.length > 300 ? req.path.slice(0, 300) + '…' : req.path}  (${req.op.operationId})`,
  ];
  for (const [k, v] of Object.entries(req.headers))
    lines.push(`  ${k}: ${v.length > 80 ? v.slice(0, 80) + `… (${v.length} chars)` : v}`);
  if (req.body !== undefined) {
    const b = req.body;
    lines.push(
      `  body (${Buffer.byteLength(b)} bytes): ${b.length > 400 ? `${b.slice(0, 200)} … ${b.slice(-120)}` : b}`,
    );
  }
  lines.push(`  mutation: ${req.note}`);
  lines.push(`  invalid: ${req.invalid.length === 0 ? 'no (may be valid)' : req.invalid.join('; ')}`);
  return lines.join('\n');
}
