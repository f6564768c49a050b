import type { GenerationFields } from '../domain/sampling.js';
import type { Determinism } from '../domain/types.js';
import type { GenerateRequest } from '../engines/adapter.js';

/** The task fields an engine request is made of (a `TaskSpec`, or a submission at admission). */
export interface GenerateSource extends GenerationFields {
  readonly prompt: string | undefined;
  readonly maxTokens: number;
  readonly seed: number;
  readonly determinism: Determinism;
  readonly samplerProfileVersion: string;
  readonly kvHint: 'reuse' | 'cold' | undefined;
}

/**
 * The engine request for a task: its prompt or chat turns and every sampling field it set.
 * `resume` continues a hard-preempted plain-prompt task after the text it already produced.
 */
export function generateRequestOf(
  t: GenerateSource,
  resume: { readonly text: string; readonly tokensOut: number } = { text: '', tokensOut: 0 },
): GenerateRequest {
  return {
    prompt: (t.prompt ?? '') + resume.text,
    maxTokens: t.maxTokens - resume.tokensOut,
    seed: t.seed,
    determinism: t.determinism,
    samplerProfileVersion: t.samplerProfileVersion,
    cachePrompt: t.kvHint !== 'cold',
    ...(t.messages === undefined ? {} : { messages: t.messages }),
    ...(t.tools === undefined ? {} : { tools: t.tools }),
    ...(t.toolChoice === undefined ? {} : { toolChoice: t.toolChoice }),
    ...(t.sampling === undefined ? {} : { sampling: t.sampling }),
    ...(t.stop === undefined ? {} : { stop: t.stop }),
    ...(t.responseFormat === undefined ? {} : { responseFormat: t.responseFormat }),
  };
}

/**
 * A task whose resumed stream could not continue the same output: chat turns (the engine's
 * template ends the prompt), constrained output (the grammar's state is lost) and tool calls.
 * Such tasks are never hard-preempted.
 */
export function resumable(t: GenerationFields): boolean {
  return (
    t.messages === undefined &&
    t.tools === undefined &&
    (t.responseFormat === undefined || t.responseFormat.type === 'text')
  );
}

/** `end.finish_reason` from the engine's stop reason (OpenAI's names). */
export function finishReasonOf(
  stop: 'eos' | 'length' | 'stop' | 'tool_calls' | 'unknown',
): 'stop' | 'length' | 'tool_calls' {
  if (stop === 'length') return 'length';
  if (stop === 'tool_calls') return 'tool_calls';
  return 'stop';
}
