import type { EngineEvent } from '../adapter.js';
import { OrchError } from '../../errors/orch-error.js';
import { tritonFailure } from './map-error.js';
import type { ErrorResponse, GenerateResponse } from './wire-types.js';

/**
 * Turns `generate_stream` events into engine events. In streaming (decoupled) mode TRT-LLM sends
 * one response per generated token with that token's text and no counts; the stream ends by the
 * server closing it, so `finish()` produces the final event.
 */
export class TritonStreamParser {
  #emitted = 0;

  push(data: string): EngineEvent[] {
    let ev: Partial<GenerateResponse & ErrorResponse>;
    try {
      ev = JSON.parse(data) as typeof ev;
    } catch {
      throw new OrchError('WORKER_RESET', 'Triton sent a malformed stream event', { engine: 'triton' });
    }
    if (typeof ev.error === 'string') throw tritonFailure(ev.error);
    if (typeof ev.text_output !== 'string') return [];
    this.#emitted++;
    return [{ kind: 'tokens', count: 1, ids: [], text: ev.text_output }];
  }

  finish(tokensIn: number, maxTokens: number): EngineEvent {
    return {
      kind: 'done',
      tokensIn,
      tokensOut: this.#emitted,
      stopReason: this.#emitted >= maxTokens ? 'length' : 'eos',
    };
  }
}
