import type { EngineEvent } from '../adapter.js';

/**
 * Removes the stop sequence TGI leaves at the end of the generated text (`StopSequenceCriteria`
 * matches `stop$` on the output, and the matching token is streamed like any other). Text that
 * could be the start of a stop sequence is held back until the next token says otherwise; the
 * token counts pass through unchanged, so a held-back token yields a `tokens` event without text.
 */
export class StopTrim {
  readonly #stops: readonly string[];
  readonly #hold: number;
  #held = '';
  #stopped = false;

  constructor(stops: readonly string[] | undefined) {
    this.#stops = (stops ?? []).filter((s) => s !== '');
    this.#hold = Math.max(0, ...this.#stops.map((s) => s.length - 1));
  }

  push(ev: EngineEvent): EngineEvent[] {
    if (this.#stops.length === 0) return [ev];
    if (ev.kind === 'tokens') {
      if (this.#stopped) return [{ ...ev, text: '' }];
      this.#held += ev.text;
      const stop = this.#stops.find((s) => this.#held.endsWith(s));
      let text: string;
      if (stop !== undefined) {
        // TGI ends the generation on this token: what precedes the stop sequence is final.
        this.#stopped = true;
        text = this.#held.slice(0, this.#held.length - stop.length);
        this.#held = '';
      } else {
        const cut = Math.max(0, this.#held.length - this.#hold);
        text = this.#held.slice(0, cut);
        this.#held = this.#held.slice(cut);
      }
      return [{ ...ev, text }];
    }
    const rest = this.#held;
    this.#held = '';
    return rest === '' ? [ev] : [{ kind: 'tokens', count: 0, ids: [], text: rest }, ev];
  }
}
