/** What every `llorch` command that talks to an orchestrator shares: where, with which key. */

/** `--url` and `--api-key`, defaulting to `$LLORCH_URL` and `$LLORCH_API_KEY`. */
export const CONNECTION_OPTIONS = {
  url: { type: 'string', default: process.env['LLORCH_URL'] ?? 'http://127.0.0.1:8080' },
  'api-key': { type: 'string', default: process.env['LLORCH_API_KEY'] },
} as const;

/** A JSON call to the API; a non-2xx answer throws `"<status> <code>: <message>"` from the envelope. */
export function apiCaller(
  url: string,
  apiKey: string | undefined,
): (method: string, path: string, body?: unknown) => Promise<Record<string, unknown>> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (apiKey !== undefined) headers['authorization'] = `Bearer ${apiKey}`;
  return async (method, path, body) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`${res.status} ${String(json['code'])}: ${String(json['message'])}`);
    return json;
  };
}
