/**
 * Validation of OpenAI-surface bodies against contracts/openapi/openai.yaml, for tests that
 * check real responses, SSE chunks and error bodies of `/v1/chat/completions` and friends.
 */
import type { Ajv, ValidateFunction } from 'ajv';
import { ajvFor, loadOpenApi, schemaRef } from '../../src/http/openapi.js';

let ajv: Ajv | undefined;
const compiled = new Map<string, ValidateFunction>();

function validatorFor(schemaName: string): ValidateFunction {
  let v = compiled.get(schemaName);
  if (v) return v;
  const doc = loadOpenApi().openai;
  if (!(schemaName in doc.components.schemas)) throw new Error(`openai.yaml has no schema '${schemaName}'`);
  ajv ??= ajvFor(doc, { useDefaults: false });
  v = ajv.compile(schemaRef(schemaName));
  compiled.set(schemaName, v);
  return v;
}

/**
 * Throws unless `body` matches `components.schemas[schemaName]` of openai.yaml; the message
 * lists Ajv's errors and the body, so a failing test shows what the route sent.
 */
export function validateOpenAi(schemaName: string, body: unknown): void {
  const v = validatorFor(schemaName);
  if (v(body)) return;
  const errors = (v.errors ?? []).map(
    (e) => `${e.instancePath || '(root)'} ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`,
  );
  throw new Error(
    `${schemaName} does not match openai.yaml:\n  ${errors.join('\n  ')}\nbody: ${JSON.stringify(body)}`,
  );
}

/**
 * The JSON payloads of an OpenAI SSE stream, checking its framing on the way: only `data:`
 * events, each one line of JSON, ended by exactly one `data: [DONE]`, nothing after it.
 */
export function openAiSseChunks(text: string): unknown[] {
  const events = text.split(/\r?\n\r?\n/).filter((e) => e.trim() !== '');
  const out: unknown[] = [];
  let done = false;
  for (const event of events) {
    const lines = event.split(/\r?\n/).filter((l) => !l.startsWith(':'));
    if (lines.length === 0) continue;
    if (done) throw new Error(`event after data: [DONE]: ${JSON.stringify(event)}`);
    if (lines.length !== 1 || !lines[0]?.startsWith('data: '))
      throw new Error(`not a single-line data event: ${JSON.stringify(event)}`);
    const data = lines[0].slice('data: '.length);
    if (data === '[DONE]') done = true;
    else out.push(JSON.parse(data) as unknown);
  }
  if (!done) throw new Error('the stream did not end with data: [DONE]');
  return out;
}
