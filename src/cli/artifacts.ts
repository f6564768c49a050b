/** `llorch artifacts put|get|ls`: the artifact registry from the shell. */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { apiCaller, CONNECTION_OPTIONS } from './api-call.js';

export async function artifactsCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      ...CONNECTION_OPTIONS,
      kind: { type: 'string', default: 'other' },
      file: { type: 'string' },
      content: { type: 'string' },
      tag: { type: 'string', multiple: true },
      parent: { type: 'string' },
      limit: { type: 'string' },
    },
  });
  const call = apiCaller(values.url, values['api-key']);
  let out: unknown;
  switch (sub ?? '') {
    case 'put': {
      const text = values.file !== undefined ? await readFile(values.file, 'utf8') : values.content;
      if (text === undefined) throw new Error('artifacts put needs --file PATH or --content JSON');
      let content: unknown;
      try {
        content = JSON.parse(text);
      } catch {
        content = text; // plain text is stored as a JSON string
      }
      out = await call('POST', '/v1/artifacts', {
        kind: values.kind,
        content,
        ...(values.tag ? { tags: values.tag } : {}),
        ...(values.parent !== undefined ? { parent: values.parent } : {}),
      });
      break;
    }
    case 'get': {
      const id = positionals[0];
      if (id === undefined) throw new Error('artifacts get needs an ID');
      out = await call('GET', `/v1/artifacts/${encodeURIComponent(id)}`);
      break;
    }
    case 'ls': {
      const q = new URLSearchParams();
      if (values.tag?.[0] !== undefined) q.set('tag', values.tag[0]);
      if (values.parent !== undefined) q.set('parent', values.parent);
      if (values.limit !== undefined) q.set('limit', values.limit);
      out = await call('GET', `/v1/artifacts${q.size > 0 ? `?${q.toString()}` : ''}`);
      break;
    }
    default:
      throw new Error(
        'usage: llorch artifacts put [--kind K] (--file F | --content JSON) [--tag T]... [--parent ID] | get ID | ls [--tag T] [--parent ID]',
      );
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}
