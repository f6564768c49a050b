/** One Server-Sent Events record, as the WHATWG event-stream format defines it. */
export interface SseRecord {
  readonly event: string | undefined;
  readonly data: string;
  readonly id: string | undefined;
}

/**
 * Incremental `text/event-stream` parser: feed it chunks as they arrive (split anywhere, even
 * inside a UTF-8 sequence or a CRLF), get complete records back.
 */
export class SseParser {
  readonly #decoder = new TextDecoder('utf-8');
  readonly #fieldEvents: ReadonlySet<string>;
  #buffer = '';
  #event: string | undefined;
  #data: string[] = [];
  #id: string | undefined;
  #sawCr = false;

  /**
   * `fieldEvents`: field names, beyond the standard four, that carry an event of their own. The
   * standard ignores unknown fields, but some engines send their errors that way (older
   * llama-server builds: `error: {...}`); a line `NAME: value` then yields a record with
   * `event: NAME` and the value as its data.
   */
  constructor(opts: { readonly fieldEvents?: readonly string[] } = {}) {
    this.#fieldEvents = new Set(opts.fieldEvents ?? []);
  }

  push(chunk: Uint8Array | string): SseRecord[] {
    let text = typeof chunk === 'string' ? chunk : this.#decoder.decode(chunk, { stream: true });
    // A CR at the end of the previous chunk may pair with an LF at the start of this one.
    if (this.#sawCr && text.startsWith('\n')) text = text.slice(1);
    this.#sawCr = text.endsWith('\r');
    this.#buffer += text;
    const out: SseRecord[] = [];
    const lines = this.#buffer.split(/\r\n|\r|\n/);
    this.#buffer = lines.pop() ?? '';
    for (const line of lines) this.#line(line, out);
    return out;
  }

  #line(line: string, out: SseRecord[]): void {
    if (line === '') {
      if (this.#data.length > 0) out.push({ event: this.#event, data: this.#data.join('\n'), id: this.#id });
      this.#event = undefined;
      this.#data = [];
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.#event = value;
        break;
      case 'data':
        this.#data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.#id = value;
        break;
      default:
        if (this.#fieldEvents.has(field)) {
          this.#event = field;
          this.#data.push(value);
        }
        break;
    }
  }
}

/** Parses a whole SSE body (fixtures, tests). */
export function parseSse(body: string): SseRecord[] {
  const p = new SseParser();
  return [...p.push(body), ...p.push('\n\n')];
}
