import type { EngineEvent } from '../adapter.js';
import { OrchError } from '../../errors/orch-error.js';
import { mapStreamError } from './map-error.js';
import type { CompletionFrame, ErrorDetail } from './wire-types.js';

type StopReason = Extract<EngineEvent, { kind: 'done' }>['stopReason'];

/**
 * The stop reason of a final frame: `stop_type` at the pinned tag (`stop_type_to_str` in
 * `tools/server/server-task.cpp`), the `stopped_eos` / `stopped_word` / `stopped_limit` flags in
 * builds that predate it.
 */
function stopReason(frame: CompletionFrame): StopReason {
  switch (frame.stop_type) {
    case 'eos':
      return 'eos';
    case 'limit':
      return 'length';
    case 'word':
      return 'stop';
    case 'none':
      return 'unknown';
    case undefined:
    default:
      if (frame.stopped_eos === true) return 'eos';
      if (frame.stopped_word === true) return 'stop';
      if (frame.stopped_limit === true) return 'length';
      return 'unknown';
  }
}

/**
 * Turns `/completion` stream frames into engine events. llama-server withholds an incomplete UTF-8
 * sequence (and text that may be the start of a stop string) and later releases several tokens'
 * text in one frame, reporting only the last token's id; `tokens_predicted` is the authoritative
 * count, so each frame stands for the tokens predicted since the previous one. The final frame
 * (`stop: true`) carries counts, the stop type and the slot that holds the request's KV
 * (`id_slot`).
 *
 * Prompt tokens: `tokens_evaluated` is the whole prompt, `timings.prompt_n` only the part not
 * found in the prompt cache, so on a warm session `prompt_n` is a fraction of the prompt. The
 * prompt's size (`tokensIn`: budgets, `tokens_in_total`, KV estimates) is `tokens_evaluated`;
 * `prompt_n` is what the prefill cost (`tokensInUncached`).
 */
export class CompletionStreamParser {
  #emitted = 0;

  push(data: string): EngineEvent[] {
    let frame: CompletionFrame;
    try {
      frame = JSON.parse(data) as CompletionFrame;
    } catch {
      throw new OrchError('WORKER_RESET', 'llama-server sent a malformed stream frame', {
        engine: 'llamacpp',
      });
    }
    if (frame.error) throw mapStreamError(frame.error);
    const out: EngineEvent[] = [];
    const ids = frame.tokens ?? [];
    const predicted = frame.tokens_predicted ?? this.#emitted + ids.length;
    const count = Math.max(0, predicted - this.#emitted);
    if (count > 0) {
      out.push({ kind: 'tokens', count, ids: ids.slice(-count), text: frame.content });
      this.#emitted += count;
    }
    if (frame.stop) {
      const slot = frame.id_slot;
      const uncached = frame.timings?.prompt_n;
      out.push({
        kind: 'done',
        tokensIn: frame.tokens_evaluated ?? uncached ?? 0,
        ...(uncached !== undefined ? { tokensInUncached: uncached } : {}),
        tokensOut: frame.tokens_predicted ?? this.#emitted,
        stopReason: stopReason(frame),
        // Partial frames carry -1; the final one names the slot that keeps the request's KV.
        ...(slot !== undefined && Number.isInteger(slot) && slot >= 0 ? { slotId: slot } : {}),
      });
    }
    return out;
  }

  /**
   * An `error:` SSE field (the framing of builds before the pinned one): its value is the error
   * object itself, not wrapped in `{"error": …}`. Always throws.
   */
  pushErrorField(data: string): never {
    let detail: Partial<ErrorDetail> | string = data;
    try {
      const parsed = JSON.parse(data) as unknown;
      if (typeof parsed === 'object' && parsed !== null) {
        const o = parsed as { error?: Partial<ErrorDetail> } & Partial<ErrorDetail>;
        detail = o.error ?? o;
      }
    } catch {
      // a bare message
    }
    throw mapStreamError(detail);
  }
}
