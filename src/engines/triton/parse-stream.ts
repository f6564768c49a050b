import type { EngineEvent } from '../adapter.js';
import { OrchError } from '../../errors/orch-error.js';
import { tritonFailure } from './map-error.js';
import type { ErrorResponse, GenerateResponse } from './wire-types.js';

/**
 * Turns `generate_stream` events into engine events. In streaming (decoupled) mode TensorRT-LLM
 * sends one response per decoding step with that step's text; the stream ends by the server
 * closing it, so `finish()` produces the final event.
 *
 * Token counts come from the ensemble's own outputs where the request asked for them:
 * `num_output_tokens` is the number of tokens in that response (several per step with
 * speculative decoding) and `num_input_tokens` the prompt's. A response without
 * `num_output_tokens` (ensembles that do not declare it) counts as one token when it has text.
 * Text of a response that reports no token rides on the next one that does.
 */
export class TritonStreamParser {
  #emitted = 0;
  #pendingText = '';
  #tokensIn: number | undefined;

  /** The prompt's token count the ensemble reported, if it did. */
  get tokensIn(): number | undefined {
    return this.#tokensIn;
  }

  push(data: string): EngineEvent[] {
    let ev: Partial<GenerateResponse & ErrorResponse>;
    try {
      ev = JSON.parse(data) as typeof ev;
    } catch {
      throw new OrchError('WORKER_RESET', 'Triton sent a malformed stream event', { engine: 'triton' });
    }
    if (typeof ev.error === 'string') throw tritonFailure(ev.error);
    if (isCount(ev.num_input_tokens)) this.#tokensIn = ev.num_input_tokens;
    const text = typeof ev.text_output === 'string' ? ev.text_output : undefined;
    const count = isCount(ev.num_output_tokens) ? ev.num_output_tokens : text === undefined ? 0 : 1;
    if (count === 0) {
      this.#pendingText += text ?? '';
      return [];
    }
    this.#emitted += count;
    const out = this.#pendingText + (text ?? '');
    this.#pendingText = '';
    return [{ kind: 'tokens', count, ids: [], text: out }];
  }

  /**
   * The end of the stream: text still waiting for a token is released with one, then the final
   * event. `fallbackTokensIn` is used when the ensemble reported no prompt count.
   */
  finish(fallbackTokensIn: number, maxTokens: number): EngineEvent[] {
    const out: EngineEvent[] = [];
    if (this.#pendingText !== '') {
      this.#emitted++;
      out.push({ kind: 'tokens', count: 1, ids: [], text: this.#pendingText });
      this.#pendingText = '';
    }
    out.push({
      kind: 'done',
      tokensIn: this.#tokensIn ?? fallbackTokensIn,
      tokensOut: this.#emitted,
      stopReason: this.#emitted >= maxTokens ? 'length' : 'eos',
    });
    return out;
  }
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
