/**
 * What every answer must satisfy, whatever was asked: an answer at all, no 5xx (503 only as
 * backpressure, with its retry headers, and never for a request that is invalid), 4xx for every
 * invalid request, and on every non-2xx the error body of the route's surface with an
 * `X-Correlation-Id`.
 */
import type { ValidateFunction } from 'ajv';
import { ajvFor, loadOpenApi, schemaRef } from '../../src/http/openapi.js';
import type { BuiltRequest } from './cases.js';

/** What came back for one request. */
export type Answer =
  | {
      readonly kind: 'answer';
      readonly status: number;
      readonly headers: Readonly<Record<string, string | string[] | undefined>>;
      readonly text: string;
    }
  | { readonly kind: 'no-answer'; readonly error: string }
  /** The client refused to send it (a header or path it will not put on the wire). */
  | { readonly kind: 'unsendable'; readonly error: string };

export interface Violation {
  /** A short, stable name of the rule broken. */
  readonly rule: string;
  readonly detail: string;
}

let envelopes: { orch: ValidateFunction; openai: ValidateFunction } | undefined;
function envelopeValidators() {
  const docs = loadOpenApi();
  envelopes ??= {
    orch: ajvFor(docs.data, { useDefaults: false }).compile(schemaRef('ErrorEnvelope')),
    openai: ajvFor(docs.openai, { useDefaults: false }).compile(schemaRef('ErrorResponse')),
  };
  return envelopes;
}

/** The OpenAI surface answers with OpenAI's error body. */
export function isOpenAiPath(path: string): boolean {
  return /^\/v1\/(chat\/completions|completions|embeddings|models)(\/|\?|$)/.test(path);
}

function header(a: Extract<Answer, { kind: 'answer' }>, name: string): string | undefined {
  const v = a.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Every rule `answer` breaks for `req` (none: the answer is fine). */
export function judge(req: BuiltRequest, answer: Answer): Violation[] {
  if (answer.kind === 'unsendable') return [];
  if (answer.kind === 'no-answer') return [{ rule: 'no answer', detail: answer.error }];
  const out: Violation[] = [];
  const { status } = answer;
  const body = answer.text.length > 300 ? answer.text.slice(0, 300) + '…' : answer.text;
  if (status >= 500) {
    if (status !== 503) out.push({ rule: `${status} answer`, detail: body });
    else if (header(answer, 'retry-after') === undefined || header(answer, 'x-backoff-ms') === undefined)
      out.push({ rule: '503 without Retry-After and X-Backoff-Ms', detail: body });
  }
  if (req.invalid.length > 0 && (status < 400 || status >= 500))
    out.push({ rule: `invalid request answered ${status}`, detail: `${req.invalid.join('; ')} → ${body}` });
  if (req.unauthenticated && status !== 401 && status !== 403 && status < 500)
    out.push({ rule: `bad credential answered ${status}, not 401/403`, detail: body });
  if (status >= 300) {
    const cid = header(answer, 'x-correlation-id');
    if (cid === undefined || cid === '') out.push({ rule: 'error without X-Correlation-Id', detail: body });
    else {
      const given = req.headers['x-correlation-id'];
      if (given !== undefined && CORRELATION_ID.test(given) && cid !== given)
        out.push({ rule: 'X-Correlation-Id not echoed', detail: `sent ${given}, got ${cid}` });
    }
    let json: unknown;
    try {
      json = JSON.parse(answer.text);
    } catch {
      out.push({ rule: 'error body is not JSON', detail: body });
      return out;
    }
    const openai = isOpenAiPath(req.path);
    const v = openai ? envelopeValidators().openai : envelopeValidators().orch;
    if (!v(json)) {
      out.push({
        rule: openai
          ? 'error body is not the OpenAI error shape'
          : 'error body is not the OrchQueue envelope',
        detail: body,
      });
    }
  }
  return out;
}
