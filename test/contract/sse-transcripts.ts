/**
 * SSE transcripts in Pact: the consumer's mock answers the example; provider verification
 * matches the live stream against a regular expression of the framing contract (ORCH-2002),
 * since token text and timings differ run to run while the event grammar must not.
 */
const NUM = '[0-9]+(?:\\.[0-9]+)?';
const KEEPALIVE = '(?:: [^\\n]*\\n\\n)*';
const frame = (name: string, data: string): string => `event: ${name}\\nid: [0-9]+\\ndata: ${data}\\n\\n`;
const STARTED = frame('started', `\\{"queue_position":[0-9]+,"predicted_start_ms":[0-9]+[^\\n]*\\}`);
const TOKEN = frame('token', '\\{"t":"(?:[^"\\\\\\n]|\\\\.)*","i":[0-9]+[^\\n]*\\}');
const METRICS = frame('metrics', '\\{[^\\n]*\\}');
const BODY = `(?:${KEEPALIVE}(?:${TOKEN}|${METRICS}))*${KEEPALIVE}`;

/** `started`, tokens (and metrics), then `end` with counts. */
export const SUCCESS_STREAM = `^${KEEPALIVE}${STARTED}${BODY}${frame('end', `\\{"tokens_out":[0-9]+,"decode_ms":${NUM}[^\\n]*\\}`)}$`;

/** `started`, maybe tokens, then one `error` carrying `code`. */
export const errorStream = (code: string): string =>
  `^${KEEPALIVE}${STARTED}${BODY}${frame('error', `\\{"code":"${code}","message":"[^\\n]*\\}`)}$`;

/** Renders events in the wire framing, for the consumer-side example. */
export function transcript(events: readonly [string, Record<string, unknown>][]): string {
  return events
    .map(([name, data], id) => `event: ${name}\nid: ${id}\ndata: ${JSON.stringify(data)}\n\n`)
    .join('');
}
