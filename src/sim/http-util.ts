import type { IncomingMessage, ServerResponse } from 'node:http';

export const MAX_BODY_BYTES = 8 * 1024 * 1024;

export async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new Error('body too large');
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? {} : (JSON.parse(text) as unknown);
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendText(
  res: ServerResponse,
  status: number,
  body: string,
  type = 'text/plain; charset=utf-8',
): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function startSse(res: ServerResponse): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
}

/** An AbortSignal that fires when the client goes away (the engine then frees the slot). */
export function clientGone(req: IncomingMessage, res: ServerResponse): AbortSignal {
  const ac = new AbortController();
  const abort = () => {
    if (!res.writableEnded) ac.abort(new Error('client disconnected'));
  };
  req.on('aborted', abort);
  res.on('close', abort);
  return ac.signal;
}

/** A Prometheus text block. */
export function prom(
  lines: readonly [name: string, type: 'counter' | 'gauge', help: string, value: number, labels?: string][],
): string {
  const out: string[] = [];
  for (const [name, type, help, value, labels] of lines) {
    out.push(
      `# HELP ${name} ${help}`,
      `# TYPE ${name} ${type}`,
      `${name}${labels ? `{${labels}}` : ''} ${value}`,
    );
  }
  return `${out.join('\n')}\n`;
}

export type Num = number | undefined;
export const num = (v: unknown): Num => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
export const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
export const obj = (v: unknown): Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

/** The sampling parameters a request carried, as the simulator's sampler-profile key. */
export function samplingKey(b: Record<string, unknown>, names: readonly string[]): string {
  return names.map((n) => `${n}=${JSON.stringify(b[n] ?? null)}`).join(',');
}
