import type { EngineEvent } from '../adapter.js';
import { OrchError } from '../../errors/orch-error.js';
import { tgiFailure } from './map-error.js';
import type { ErrorResponse, StreamResponse } from './wire-types.js';

type StopReason = Extract<EngineEvent, { kind: 'done' }>['stopReason'];
const stopReasons: Record<string, StopReason> = { length: 'length', eos_token: 'eos', stop_sequence: 'stop' };

/**
 * Turns `/generate_stream` events (framed `data:{json}`, one token each) into engine events.
 * Special tokens (end-of-sequence) are counted but carry no text; the event with `details` is
 * the last and holds the counts. TGI before v2.3.0 sends no `details.input_length`: the `done`
 * event then says 0 prompt tokens and `inputLengthReported` is false, for the adapter to count
 * them with `/tokenize` (see `TgiAdapter.generate`).
 */
export class TgiStreamParser {
  #done = false;
  #inputLengthReported = false;

  get done(): boolean {
    return this.#done;
  }

  /** Whether the final event carried `details.input_length` (TGI ≥ 2.3.0). */
  get inputLengthReported(): boolean {
    return this.#inputLengthReported;
  }

  push(data: string): EngineEvent[] {
    let ev: Partial<StreamResponse & ErrorResponse>;
    try {
      ev = JSON.parse(data) as typeof ev;
    } catch {
      throw new OrchError('WORKER_RESET', 'TGI sent a malformed stream event', { engine: 'tgi' });
    }
    if (typeof ev.error === 'string') throw tgiFailure(ev);
    const out: EngineEvent[] = [];
    if (ev.token)
      out.push({ kind: 'tokens', count: 1, ids: [ev.token.id], text: ev.token.special ? '' : ev.token.text });
    if (ev.details) {
      this.#done = true;
      const inputLength = ev.details.input_length;
      this.#inputLengthReported = typeof inputLength === 'number';
      out.push({
        kind: 'done',
        tokensIn: typeof inputLength === 'number' ? inputLength : 0,
        tokensOut: ev.details.generated_tokens,
        stopReason: stopReasons[ev.details.finish_reason] ?? 'unknown',
      });
    }
    return out;
  }
}
