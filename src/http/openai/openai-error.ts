/**
 * OpenAI's error body for the OpenAI-compatible surface (SPEC §17 §2.7): the HTTP status,
 * `Retry-After` and `X-Backoff-Ms` of the OrchQueue refusal, with `code` its error code.
 */
import { OrchError } from '../../errors/orch-error.js';

export interface OpenAiErrorBody {
  error: {
    message: string;
    /** OpenAI's error class (`invalid_request_error`, `rate_limit_error`, …). */
    type: string;
    /** The OrchQueue error code (SPEC §2.5). */
    code: string;
    /** The request field at fault, when the refusal names one. */
    param: string | null;
  };
}

const TYPES: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  409: 'invalid_request_error',
  410: 'invalid_request_error',
  413: 'invalid_request_error',
  429: 'rate_limit_error',
};

/**
 * The field a refusal names: OrchQueue messages start with `field: …` (`max_tokens: prompt …`,
 * `messages[0].content: …`). Fields are reported in the OpenAI request's own names.
 */
export function paramOf(err: OrchError): string | null {
  // The model's lifecycle and trust refusals are about the `model` the request named.
  if (err.code === 'MODEL_DEPRECATED' || err.code === 'UNTRUSTED_ARTIFACT') return 'model';
  const m = /^([a-z_][a-z0-9_-]*(?:\[\d+\])?(?:\.[a-z_][a-z0-9_]*(?:\[\d+\])?)*):/i.exec(err.message);
  if (!m?.[1]) return null;
  const field = m[1];
  return OPENAI_NAMES[field] ?? field;
}

/** OrchQueue field names that the OpenAI request spells otherwise. */
const OPENAI_NAMES: Readonly<Record<string, string>> = {
  model_ref: 'model',
  inputs: 'input',
  deadline_ms: 'X-LLorch-Deadline-Ms',
  priority: 'X-LLorch-Priority',
  session_id: 'X-LLorch-Session',
};

export function openAiErrorBody(err: OrchError, message: string = err.message): OpenAiErrorBody {
  return {
    error: {
      message,
      type: TYPES[err.httpStatus] ?? (err.httpStatus >= 500 ? 'server_error' : 'invalid_request_error'),
      code: err.code,
      param: paramOf(err),
    },
  };
}

/** A refusal of an OpenAI parameter llama-orch does not serve (always a 400 naming it). */
export function unsupported(param: string, why: string): OrchError {
  return new OrchError('INVALID_PARAMS', `${param}: ${why}`);
}
