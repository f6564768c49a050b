/** What every client test asks for: the same turns, the same JSON schema, stop strings from text. */
import { Ajv } from 'ajv';

export const MESSAGES = [
  { role: 'system' as const, content: 'You are terse.' },
  { role: 'user' as const, content: 'Say hello.' },
];

/** The JSON schema every client asks for; the engine's grammar makes even the tiny model follow it. */
export const SCHEMA = {
  type: 'object',
  properties: { n: { type: 'integer' }, ok: { type: 'boolean' } },
  required: ['n', 'ok'],
  additionalProperties: false,
} as const;

export const validSchema = new Ajv().compile(SCHEMA);

/** A stop string from `text`: its first ASCII letter or digit after the start. */
export function stopFrom(text: string): string {
  const i = text.slice(1).search(/[A-Za-z0-9]/);
  if (i < 0) throw new Error(`no ASCII character to stop at in ${JSON.stringify(text)}`);
  return text.charAt(i + 1);
}
