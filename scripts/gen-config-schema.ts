/** Renders contracts/config.schema.json from the TypeBox config schema (the single source of truth). */
import { configJsonSchema } from '../src/config/schema.js';
import type { GeneratedFile } from './gen.js';

export async function generateConfigSchema(_root: string): Promise<GeneratedFile[]> {
  const schema = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://llama-orch.dev/schemas/config.schema.json',
    ...configJsonSchema(),
  };
  return [{ path: 'contracts/config.schema.json', content: `${JSON.stringify(schema, null, 2)}\n` }];
}
