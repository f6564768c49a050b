import type { EngineEvent } from '../adapter.js';
import { OrchError } from '../../errors/orch-error.js';
import { mapEngineFailure } from './map-error.js';
import type { CompletionFrame } from './wire-types.js';

type StopReason = Extract<EngineEvent, { kind: 'done' }>['stopReason'];

function stopReason(stopType: string | undefined): StopReason {
  switch (stopType) {
    case 'eos':
      return 'eos';
    case 'limit':
      return 'length';
    case 'word':
      return 'stop';
    case 'none':
    case undefined:
    default:
      return 'unknown';
  }
}

/**
 * Turns `/completion` stream frames into engine events. llama-server withholds an incomplete UTF-8
 * sequence and later releases several tokens' text in one frame, reporting only the last token's
 * id; `tokens_predicted` is the authoritative count, so each frame stands for the tokens predicted
 * since the previous one. The final frame (`stop: true`) carries counts, the stop type and the
 * slot that holds the request's KV (`id_slot`).
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
    if (frame.error) {
      throw mapEngineFailure(frame.error.message);
    }
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
      out.push({
        kind: 'done',
        tokensIn: frame.timings?.prompt_n ?? frame.tokens_evaluated ?? 0,
        tokensOut: frame.tokens_predicted ?? this.#emitted,
        stopReason: stopReason(frame.stop_type),
        // Partial frames carry -1; the final one names the slot that keeps the request's KV.
        ...(slot !== undefined && Number.isInteger(slot) && slot >= 0 ? { slotId: slot } : {}),
      });
    }
    return out;
  }
}
