/**
 * OpenAI request bodies as OrchQueue tasks (SPEC §17 §2.7). Every field is either mapped onto
 * the task or refused with a 400 naming it: nothing a client sets is silently dropped.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { GenerationFields } from '../../domain/sampling.js';
import type { SubmitInput } from '../../domain/submit.js';
import { PRIORITIES, type Engine, type Priority } from '../../domain/types.js';
import { OrchError } from '../../errors/orch-error.js';
import { generationFieldsOf, type GenerationBody, type WireMessage } from '../generation-fields.js';
import { unsupported } from './openai-error.js';

export type OpenAiOperation = 'chat' | 'completion' | 'embedding';

/** The pool a request's `model` resolves to. */
export interface ResolvedModel {
  readonly modelRef: string;
  readonly engine: Engine;
  readonly ctx: number;
}

/** Defaults for what the `X-LLorch-*` headers leave open (config `openai`). */
export interface OpenAiDefaults {
  readonly defaultPriority: Priority;
  readonly deadlineMs: { readonly interactive: number; readonly batch: number };
}

export interface OpenAiTask {
  readonly input: SubmitInput;
  /** The `model` the client asked for, echoed in every response. */
  readonly model: string;
  readonly stream: boolean;
  readonly includeUsage: boolean;
  /** Embeddings: `float` arrays or base64 of little-endian float32 (the `openai` client's default). */
  readonly encoding: 'float' | 'base64';
}

type Body = Record<string, unknown>;

/** Fields each operation takes; anything else is refused by name. */
const ACCEPTED: Readonly<Record<OpenAiOperation, ReadonlySet<string>>> = {
  chat: new Set([
    'model',
    'messages',
    'stream',
    'stream_options',
    'max_tokens',
    'max_completion_tokens',
    'temperature',
    'top_p',
    'top_k',
    'min_p',
    'repeat_penalty',
    'repetition_penalty',
    'presence_penalty',
    'frequency_penalty',
    'seed',
    'stop',
    'response_format',
    'tools',
    'tool_choice',
    'parallel_tool_calls',
    'n',
    'logprobs',
    'top_logprobs',
    'logit_bias',
    'user',
    'metadata',
    'store',
    'service_tier',
  ]),
  completion: new Set([
    'model',
    'prompt',
    'stream',
    'stream_options',
    'max_tokens',
    'temperature',
    'top_p',
    'top_k',
    'min_p',
    'repeat_penalty',
    'repetition_penalty',
    'presence_penalty',
    'frequency_penalty',
    'seed',
    'stop',
    'n',
    'best_of',
    'echo',
    'logprobs',
    'logit_bias',
    'suffix',
    'user',
  ]),
  embedding: new Set(['model', 'input', 'encoding_format', 'dimensions', 'user']),
};

/** Why a known OpenAI field is refused when set to anything but its neutral value. */
function refuseUnsupported(op: OpenAiOperation, b: Body): void {
  for (const key of Object.keys(b))
    if (!ACCEPTED[op].has(key)) throw unsupported(key, `not supported by llama-orch's ${op} endpoint`);
  const set = (k: string) => b[k] !== undefined && b[k] !== null;
  if (set('n') && b['n'] !== 1) throw unsupported('n', 'only n = 1 is supported (one choice per task)');
  if (set('best_of') && b['best_of'] !== 1) throw unsupported('best_of', 'only best_of = 1 is supported');
  if (set('logprobs') && b['logprobs'] !== false)
    throw unsupported('logprobs', 'log probabilities are not returned by llama-orch');
  if (set('top_logprobs'))
    throw unsupported('top_logprobs', 'log probabilities are not returned by llama-orch');
  if (set('logit_bias') && Object.keys(object(b['logit_bias'], 'logit_bias')).length > 0)
    throw unsupported('logit_bias', 'logit biases are not supported');
  if (set('echo') && b['echo'] !== false) throw unsupported('echo', 'echoing the prompt is not supported');
  if (set('suffix')) throw unsupported('suffix', 'insertion (suffix) is not supported');
  if (set('store') && b['store'] !== false)
    throw unsupported('store', 'llama-orch does not store completions');
  if (set('parallel_tool_calls') && b['parallel_tool_calls'] !== true)
    throw unsupported(
      'parallel_tool_calls',
      'the engines decide how many calls a turn makes; only true is accepted',
    );
  if (set('service_tier') && b['service_tier'] !== 'auto' && b['service_tier'] !== 'default')
    throw unsupported('service_tier', 'use the X-LLorch-Priority header for priority classes');
  if (set('dimensions')) throw unsupported('dimensions', 'the model decides the embedding size');
  // Recorded in logs only, but still OpenAI's type: a non-string is a malformed request, not ignored.
  if (set('user') && typeof b['user'] !== 'string')
    throw new OrchError('INVALID_PARAMS', 'user: must be a string');
  if (set('tool_choice') && !set('tools')) throw unsupported('tool_choice', 'needs tools');
}

function object(v: unknown, field: string): Body {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new OrchError('INVALID_PARAMS', `${field}: must be an object`);
  return v as Body;
}

function num(b: Body, field: string, min: number, max: number, integer = false): number | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v)))
    throw new OrchError('INVALID_PARAMS', `${field}: must be ${integer ? 'an integer' : 'a number'}`);
  if (v < min || v > max)
    throw new OrchError('INVALID_PARAMS', `${field}: must be between ${min} and ${max}`);
  return v;
}

function bool(b: Body, field: string): boolean | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new OrchError('INVALID_PARAMS', `${field}: must be a boolean`);
  return v;
}

function texts(v: unknown, field: string): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.length > 0 && v.every((s): s is string => typeof s === 'string')) return v;
  throw new OrchError(
    'INVALID_PARAMS',
    `${field}: must be a string or a non-empty array of strings (token arrays are not supported)`,
  );
}

function stopOf(b: Body): string[] | undefined {
  const v = b['stop'];
  if (v === undefined || v === null) return undefined;
  const list = typeof v === 'string' ? [v] : Array.isArray(v) ? v : undefined;
  if (!list || !list.every((s): s is string => typeof s === 'string' && s.length > 0) || list.length > 8)
    throw new OrchError('INVALID_PARAMS', 'stop: must be a non-empty string or up to 8 of them');
  return list;
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

function messagesOf(b: Body): WireMessage[] {
  const v = b['messages'];
  if (!Array.isArray(v) || v.length === 0)
    throw new OrchError('INVALID_PARAMS', 'messages: must be a non-empty array of chat messages');
  return v.map((m, i) => {
    const o = object(m, `messages[${i}]`);
    if (typeof o['role'] !== 'string' || !ROLES.has(o['role']))
      throw new OrchError('INVALID_PARAMS', `messages[${i}].role: must be one of ${[...ROLES].join(', ')}`);
    const c = o['content'];
    if (!(c === undefined || c === null || typeof c === 'string' || Array.isArray(c)))
      throw new OrchError(
        'INVALID_PARAMS',
        `messages[${i}].content: must be a string or an array of text parts`,
      );
    return o as unknown as WireMessage;
  });
}

function responseFormatOf(b: Body): unknown {
  const v = b['response_format'];
  if (v === undefined || v === null) return undefined;
  const f = object(v, 'response_format');
  if (f['type'] === 'text' || f['type'] === 'json_object') return { type: f['type'] };
  if (f['type'] === 'json_schema') {
    const js = object(f['json_schema'], 'response_format.json_schema');
    if (js['schema'] !== undefined) object(js['schema'], 'response_format.json_schema.schema');
    return { type: 'json_schema', json_schema: js };
  }
  throw new OrchError('INVALID_PARAMS', `response_format: type must be text, json_object or json_schema`);
}

function toolsOf(b: Body): { tools?: unknown[]; tool_choice?: unknown } {
  const tools = b['tools'];
  if (tools === undefined || tools === null) return {};
  if (!Array.isArray(tools)) throw new OrchError('INVALID_PARAMS', 'tools: must be an array');
  tools.forEach((t, i) => {
    const o = object(t, `tools[${i}]`);
    if (o['type'] !== 'function')
      throw unsupported(`tools[${i}].type`, "only 'function' tools are supported");
    const f = object(o['function'], `tools[${i}].function`);
    if (typeof f['name'] !== 'string' || f['name'] === '')
      throw new OrchError('INVALID_PARAMS', `tools[${i}].function.name: required`);
  });
  const choice = b['tool_choice'];
  if (choice !== undefined && choice !== null && !['none', 'auto', 'required'].includes(choice as string)) {
    const c = object(choice, 'tool_choice');
    if (c['type'] !== 'function' || typeof object(c['function'], 'tool_choice.function')['name'] !== 'string')
      throw new OrchError(
        'INVALID_PARAMS',
        "tool_choice: 'none', 'auto', 'required' or {type: 'function', function: {name}}",
      );
  }
  return { tools, ...(choice === undefined || choice === null ? {} : { tool_choice: choice }) };
}

function streamOptionsOf(b: Body, stream: boolean): boolean {
  const v = b['stream_options'];
  if (v === undefined || v === null) return false;
  if (!stream) throw new OrchError('INVALID_PARAMS', 'stream_options: only allowed with stream: true');
  const o = object(v, 'stream_options');
  for (const k of Object.keys(o))
    if (k !== 'include_usage') throw unsupported(`stream_options.${k}`, 'not supported');
  return bool(o, 'include_usage') ?? false;
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * `X-LLorch-Session`: a UUID is the session id itself; any other name maps to a stable UUID, so
 * clients can name sessions as they like. Absent: a session of its own (no affinity).
 */
export function sessionIdOf(name: string | undefined): string {
  if (name === undefined) return randomUUID();
  if (name.length === 0 || name.length > 128)
    throw new OrchError('INVALID_PARAMS', 'X-LLorch-Session: 1 to 128 characters');
  if (UUID.test(name)) return name.toLowerCase();
  const h = createHash('sha256').update(`llorch-session:${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h.slice(16, 17), 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function schedulingOf(
  headers: Record<string, string | string[] | undefined>,
  d: OpenAiDefaults,
): { priority: Priority; deadlineMs: number; sessionId: string } {
  const p = header(headers, 'x-llorch-priority');
  if (p !== undefined && !(PRIORITIES as readonly string[]).includes(p))
    throw new OrchError('INVALID_PARAMS', `X-LLorch-Priority: must be one of ${PRIORITIES.join(', ')}`);
  const priority = (p as Priority | undefined) ?? d.defaultPriority;
  const dl = header(headers, 'x-llorch-deadline-ms');
  if (dl !== undefined && !/^[1-9]\d{0,14}$/.test(dl.trim()))
    throw new OrchError('INVALID_PARAMS', 'X-LLorch-Deadline-Ms: must be a positive integer (milliseconds)');
  return {
    priority,
    deadlineMs: dl === undefined ? d.deadlineMs[priority] : Number(dl.trim()),
    sessionId: sessionIdOf(header(headers, 'x-llorch-session')),
  };
}

/** The `model` field, before it is resolved to a pool. */
export function modelOf(body: unknown): string {
  const b = object(body ?? undefined, 'body');
  if (typeof b['model'] !== 'string' || b['model'] === '')
    throw new OrchError('INVALID_PARAMS', 'model: required (a catalog id, tag or served model id)');
  return b['model'];
}

/** An OpenAI request as the task it becomes (everything but tenancy, which is the key's). */
export function toOpenAiTask(
  op: OpenAiOperation,
  body: unknown,
  headers: Record<string, string | string[] | undefined>,
  resolved: ResolvedModel,
  defaults: OpenAiDefaults,
): OpenAiTask {
  const b = object(body, 'body');
  const model = modelOf(b);
  refuseUnsupported(op, b);
  const stream = op === 'embedding' ? false : (bool(b, 'stream') ?? false);
  const includeUsage = op === 'embedding' ? false : streamOptionsOf(b, stream);
  const { priority, deadlineMs, sessionId } = schedulingOf(headers, defaults);
  const base = {
    taskId: randomUUID(),
    sessionId,
    modelRef: resolved.modelRef,
    engine: resolved.engine,
    ctx: resolved.ctx,
    priority,
    determinism: 'strict' as const,
    samplerProfileVersion: 'v1',
    deadlineMs,
    expectedTokens: undefined,
    kvHint: undefined,
    // The answer is this HTTP response: no client can resume it after a restart.
    boundToRequest: true,
  };
  if (op === 'embedding') {
    const enc = b['encoding_format'] ?? 'float';
    if (enc !== 'float' && enc !== 'base64')
      throw new OrchError('INVALID_PARAMS', "encoding_format: must be 'float' or 'base64'");
    return {
      model,
      stream,
      includeUsage,
      encoding: enc,
      input: {
        ...base,
        workload: 'embedding',
        seed: undefined,
        prompt: undefined,
        inputs: texts(b['input'], 'input'),
        maxTokens: 1,
      },
    };
  }
  const maxTokens =
    num(b, 'max_completion_tokens', 1, resolved.ctx, true) ?? num(b, 'max_tokens', 1, resolved.ctx, true);
  const gen: GenerationBody = {
    temperature: num(b, 'temperature', 0, 2),
    top_p: num(b, 'top_p', Number.MIN_VALUE, 1),
    top_k: num(b, 'top_k', 0, 1_000_000, true),
    min_p: num(b, 'min_p', 0, 1),
    repeat_penalty:
      num(b, 'repeat_penalty', Number.MIN_VALUE, 10) ?? num(b, 'repetition_penalty', Number.MIN_VALUE, 10),
    presence_penalty: num(b, 'presence_penalty', -2, 2),
    frequency_penalty: num(b, 'frequency_penalty', -2, 2),
    stop: stopOf(b),
    response_format: op === 'chat' ? responseFormatOf(b) : undefined,
    ...(op === 'chat' ? toolsOf(b) : {}),
    ...(op === 'chat' ? { messages: messagesOf(b) } : {}),
  };
  const fields: GenerationFields = generationFieldsOf(gen);
  const prompt = op === 'completion' ? texts(b['prompt'], 'prompt') : undefined;
  if (prompt !== undefined && prompt.length > 1)
    throw unsupported('prompt', 'one prompt per request (a batch of prompts is one request each)');
  // OpenAI's legacy completions default to 16 tokens; chat leaves the rest of the context.
  const fromCtx = maxTokens === undefined && op === 'chat';
  return {
    model,
    stream,
    includeUsage,
    encoding: 'float',
    input: {
      ...base,
      ...fields,
      workload: 'completion',
      seed: num(b, 'seed', 0, Number.MAX_SAFE_INTEGER, true),
      prompt: prompt?.[0],
      inputs: undefined,
      maxTokens: maxTokens ?? (fromCtx ? 1 : 16),
      ...(fromCtx ? { maxTokensFromCtx: true } : {}),
    },
  };
}
