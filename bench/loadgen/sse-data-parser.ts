/**
 * The `data` of each Server-Sent Event in a response body, fed chunk by chunk as the bytes
 * arrive. Lean on purpose: the load generator runs it for every token of every stream, next to
 * the servers it measures, so it only scans for line ends and keeps `data:` fields (other
 * fields, comments and `event:` names are skipped: OpenAI-compatible streams carry everything
 * in `data`). Lines end in LF or CRLF, and a chunk may end anywhere, even inside a UTF-8
 * sequence or between the CR and the LF.
 */
export class SseDataParser {
  readonly #decoder = new TextDecoder('utf-8');
  #buffer = '';
  #data: string | undefined;

  /** The events this chunk completed, in order. */
  push(chunk: Uint8Array | string): string[] {
    const text = typeof chunk === 'string' ? chunk : this.#decoder.decode(chunk, { stream: true });
    const buf = this.#buffer === '' ? text : this.#buffer + text;
    const out: string[] = [];
    let start = 0;
    for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n', start)) {
      const end = nl > start && buf.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      this.#line(buf, start, end, out);
      start = nl + 1;
    }
    this.#buffer = start === 0 ? buf : buf.slice(start);
    return out;
  }

  /** The event left open when the body ended without its blank line (a cut stream), if any. */
  end(): string[] {
    const rest = this.#buffer + this.#decoder.decode();
    this.#buffer = '';
    const out: string[] = [];
    if (rest !== '') this.#line(rest, 0, rest.endsWith('\r') ? rest.length - 1 : rest.length, out);
    if (this.#data !== undefined) out.push(this.#data);
    this.#data = undefined;
    return out;
  }

  #line(buf: string, start: number, end: number, out: string[]): void {
    if (end === start) {
      if (this.#data !== undefined) out.push(this.#data);
      this.#data = undefined;
      return;
    }
    // `data:` (5 characters), then one optional space.
    if (end - start < 5 || !buf.startsWith('data:', start)) return;
    const from = buf.charCodeAt(start + 5) === 32 ? start + 6 : start + 5;
    const value = buf.slice(from, end);
    this.#data = this.#data === undefined ? value : `${this.#data}\n${value}`;
  }
}
