import type { EngineEvent } from '../adapter.js';
import { OrchError } from '../../errors/orch-error.js';
import { vllmStreamFailure } from './map-error.js';
import type { CompletionChunk } from './wire-types.js';

type StopReason = Extract<EngineEvent, { kind: 'done' }>['stopReason'];

/**
 * vLLM's `finish_reason` with its `stop_reason` (`vllm/outputs.py` `CompletionOutput`): "stop"
 * with no stop reason is end-of-sequence, with a string or a token id a stop string or stop token
 * of the request; "length" is max_tokens; "abort" (and anything else) says nothing useful.
 */
function stopReason(finish: string | null, reason: string | number | null | undefined): StopReason {
  if (finish === 'length') return 'length';
  if (finish === 'stop') return reason === null || reason === undefined ? 'eos' : 'stop';
  return 'unknown';
}

/**
 * Turns a streamed `/v1/completions` response into engine events. With
 * `continuous_usage_stats` every chunk carries cumulative usage, so the number of tokens a chunk
 * stands for is exact even when the detokenizer releases several at once (or none: text held
 * back while it could still become a stop string); without usage each text chunk counts as one.
 * The usage-only chunk (`choices: []`) and `data: [DONE]` end it. An error event (either release
 * line's shape, see `ErrorBody`) is thrown as the error it maps to.
 */
export class VllmStreamParser {
  #emitted = 0;
  #finish: string | null = null;
  #stopReason: string | number | null | undefined;
  #usage: { prompt: number; completion: number } | undefined;
  #done = false;

  get done(): boolean {
    return this.#done;
  }

  push(data: string): EngineEvent[] {
    if (data.trim() === '[DONE]') {
      this.#done = true;
      return [
        {
          kind: 'done',
          tokensIn: this.#usage?.prompt ?? 0,
          tokensOut: this.#usage?.completion ?? this.#emitted,
          stopReason: stopReason(this.#finish, this.#stopReason),
        },
      ];
    }
    let chunk: CompletionChunk & { error?: unknown; object?: string };
    try {
      chunk = JSON.parse(data) as typeof chunk;
    } catch {
      throw new OrchError('WORKER_RESET', 'vLLM sent a malformed stream chunk', { engine: 'vllm' });
    }
    if (chunk.error !== undefined || chunk.object === 'error') throw vllmStreamFailure(chunk);
    if (chunk.usage)
      this.#usage = { prompt: chunk.usage.prompt_tokens, completion: chunk.usage.completion_tokens };
    const choice = chunk.choices[0];
    if (!choice) return [];
    if (choice.finish_reason !== null) {
      this.#finish = choice.finish_reason;
      this.#stopReason = choice.stop_reason;
    }
    const count = chunk.usage ? chunk.usage.completion_tokens - this.#emitted : choice.text === '' ? 0 : 1;
    if (count <= 0) return [];
    this.#emitted += count;
    return [{ kind: 'tokens', count, ids: [], text: choice.text }];
  }
}
