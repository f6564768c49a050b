import type { EngineEvent } from '../adapter.js';
import { OrchError } from '../../errors/orch-error.js';
import { tgiFailure } from './map-error.js';
import type { ErrorResponse, StreamResponse } from './wire-types.js';

type StopReason = Extract<EngineEvent, { kind: 'done' }>['stopReason'];
const stopReasons: Record<string, StopReason> = { length: 'length', eos_token: 'eos', stop_sequence: 'stop' };

/**
 * Turns `/generate_stream` events (framed `data:{json}`, one token each) into engine events.
 * Special tokens (end-of-sequence) are counted but carry no text; the event with `details` is
 * the last and holds the counts.
 */
export class TgiStreamParser {
  #done = false;

  get done(): boolean {
    return this.#done;
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
      out.push({
        kind: 'done',
        tokensIn: ev.details.input_length,
        tokensOut: ev.details.generated_tokens,
        stopReason: stopReasons[ev.details.finish_reason] ?? 'unknown',
      });
    }
    return out;
  }
}
