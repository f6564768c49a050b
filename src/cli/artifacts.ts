/** `llorch artifacts put|get|ls`: the artifact registry from the shell. */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { clientFor, CONNECTION_OPTIONS } from './api-call.js';
import type { ArtifactRequest } from '../client/types.js';

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
  const client = clientFor(values);
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
      out = await client.createArtifact({
        kind: values.kind as ArtifactRequest['kind'],
        content,
        ...(values.tag ? { tags: values.tag } : {}),
        ...(values.parent !== undefined ? { parent: values.parent } : {}),
      });
      break;
    }
    case 'get': {
      const id = positionals[0];
      if (id === undefined) throw new Error('artifacts get needs an ID');
      out = await client.getArtifact(id);
      break;
    }
    case 'ls': {
      out = await client.listArtifacts({
        ...(values.tag?.[0] !== undefined ? { tag: values.tag[0] } : {}),
        ...(values.parent !== undefined ? { parent: values.parent } : {}),
        ...(values.limit !== undefined ? { limit: Number(values.limit) } : {}),
      });
      break;
    }
    default:
      throw new Error(
        'usage: llorch artifacts put [--kind K] (--file F | --content JSON) [--tag T]... [--parent ID] | get ID | ls [--tag T] [--parent ID]',
      );
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}
