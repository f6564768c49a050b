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
 *
 * Stop words: TensorRT-LLM ends the sequence on a stop word's tokens and keeps them in its
 * output (the executor's `FinishReason::kSTOP_WORDS`; NVIDIA/TensorRT-LLM
 * `tensorrt_llm/executor/result.py` `_handle_sequence` is where its own API trims them, and the
 * Triton backend does not). So the text is cut before the first stop string, text that could be
 * the start of one is held back until it cannot, and nothing after a stop string is emitted.
 *
 * Why it ended: the stock ensemble streams no finish reason (its outputs at 2a9abd95 have none),
 * so the reason is inferred: `stop` when a stop string was cut, `length` when `maxTokens` tokens
 * came, otherwise `eos`. What cannot be told apart: a stop word the engine matched by token ids
 * whose text the detokenizer renders differently (no stop string appears: reported `eos`), and
 * an end-of-sequence on exactly the last allowed token (reported `length`).
 */
export class TritonStreamParser {
  #emitted = 0;
  #pendingText = '';
  #tokensIn: number | undefined;
  readonly #stops: readonly string[];
  /** Text held back because it could be the beginning of a stop string. */
  #held = '';
  #stopped = false;

  constructor(stop: readonly string[] = []) {
    this.#stops = stop.filter((s) => s !== '');
  }

  /** The prompt's token count the ensemble reported, if it did. */
  get tokensIn(): number | undefined {
    return this.#tokensIn;
  }

  /** A stop string was seen: the caller stops reading (closing the stream cancels in Triton). */
  get stopped(): boolean {
    return this.#stopped;
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
    if (this.#stopped) return [];
    const text = typeof ev.text_output === 'string' ? ev.text_output : undefined;
    const count = isCount(ev.num_output_tokens) ? ev.num_output_tokens : text === undefined ? 0 : 1;
    if (count === 0) {
      this.#pendingText += text ?? '';
      return [];
    }
    this.#emitted += count;
    const out = this.#cut(this.#pendingText + (text ?? ''));
    this.#pendingText = '';
    return [{ kind: 'tokens', count, ids: [], text: out }];
  }

  /** The text of `chunk` that can be sent now: before any stop string, less a possible prefix of one. */
  #cut(chunk: string): string {
    if (this.#stops.length === 0) return chunk;
    const text = this.#held + chunk;
    let at = -1;
    for (const s of this.#stops) {
      const i = text.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    if (at >= 0) {
      this.#stopped = true;
      this.#held = '';
      return text.slice(0, at);
    }
    let keep = 0;
    for (const s of this.#stops)
      for (let n = Math.min(s.length - 1, text.length); n > keep; n--)
        if (text.endsWith(s.slice(0, n))) {
          keep = n;
          break;
        }
    this.#held = text.slice(text.length - keep);
    return text.slice(0, text.length - keep);
  }

  /**
   * The end of the stream: text still waiting for a token is released with one, then the final
   * event. `fallbackTokensIn` is used when the ensemble reported no prompt count.
   */
  finish(fallbackTokensIn: number, maxTokens: number): EngineEvent[] {
    const out: EngineEvent[] = [];
    if (this.#pendingText !== '' && !this.#stopped) {
      this.#emitted++;
      out.push({ kind: 'tokens', count: 1, ids: [], text: this.#cut(this.#pendingText) });
      this.#pendingText = '';
    }
    // Held text that never became a stop string is text the model wrote.
    if (this.#held !== '' && !this.#stopped)
      out.push({ kind: 'tokens', count: 0, ids: [], text: this.#held });
    this.#held = '';
    out.push({
      kind: 'done',
      tokensIn: this.#tokensIn ?? fallbackTokensIn,
      tokensOut: this.#emitted,
      stopReason: this.#stopped ? 'stop' : this.#emitted >= maxTokens ? 'length' : 'eos',
    });
    return out;
  }
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
