import type { EngineEvent } from '../adapter.js';
import { OrchError } from '../../errors/orch-error.js';
import { errorMessage, vllmFailure } from './map-error.js';
import type { CompletionChunk } from './wire-types.js';

type StopReason = Extract<EngineEvent, { kind: 'done' }>['stopReason'];

const stopReason = (finish: string | null | undefined): StopReason =>
  finish === 'length' ? 'length' : finish === 'stop' ? 'eos' : finish === 'abort' ? 'unknown' : 'unknown';

/**
 * Turns a streamed `/v1/completions` response into engine events. With
 * `continuous_usage_stats` every chunk carries cumulative usage, so the number of tokens a chunk
 * stands for is exact even when the detokenizer releases several at once; without usage each
 * text chunk counts as one. The usage-only chunk (`choices: []`) and `data: [DONE]` end it.
 */
export class VllmStreamParser {
  #emitted = 0;
  #finish: string | null = null;
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
          stopReason: stopReason(this.#finish),
        },
      ];
    }
    let chunk: CompletionChunk & { error?: unknown; object?: string };
    try {
      chunk = JSON.parse(data) as typeof chunk;
    } catch {
      throw new OrchError('WORKER_RESET', 'vLLM sent a malformed stream chunk', { engine: 'vllm' });
    }
    if (chunk.error !== undefined || chunk.object === 'error')
      throw vllmFailure(errorMessage(chunk) ?? 'unknown error');
    if (chunk.usage)
      this.#usage = { prompt: chunk.usage.prompt_tokens, completion: chunk.usage.completion_tokens };
    const choice = chunk.choices[0];
    if (!choice) return [];
    if (choice.finish_reason !== null) this.#finish = choice.finish_reason;
    const count = chunk.usage ? chunk.usage.completion_tokens - this.#emitted : choice.text === '' ? 0 : 1;
    if (count <= 0) return [];
    this.#emitted += count;
    return [{ kind: 'tokens', count, ids: [], text: choice.text }];
  }
}
