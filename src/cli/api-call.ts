/** What every `llorch` command that talks to an orchestrator shares: where, with which key. */
import { OrchClient } from '../client/orch-client.js';

/** `--url` and `--api-key`, defaulting to `$LLORCH_URL` and `$LLORCH_API_KEY`. */
export const CONNECTION_OPTIONS = {
  url: { type: 'string', default: process.env['LLORCH_URL'] ?? 'http://127.0.0.1:8080' },
  'api-key': { type: 'string', default: process.env['LLORCH_API_KEY'] },
} as const;

/** The typed client for the parsed connection options; every command sends through it. */
export function clientFor(values: { url: string; 'api-key'?: string | undefined }): OrchClient {
  return new OrchClient({ baseUrl: values.url, apiKey: values['api-key'] });
}
