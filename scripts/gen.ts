/**
 * Regenerates every derived file (TypeScript types from the OpenAPI documents, the config JSON
 * Schema from the config types, the plugin SDK's snapshot classes from the plugin contracts).
 * `--check` fails when a committed file is stale.
 */
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateOpenApiTypes } from './gen-openapi.js';
import { generateConfigSchema } from './gen-config-schema.js';
import { generateMetricsContract } from './gen-metrics-contract.js';
import { generatePluginSdk } from './gen-plugin-sdk.js';

export interface GeneratedFile {
  /** Path relative to the repository root. */
  readonly path: string;
  readonly content: string;
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');

const files: GeneratedFile[] = [
  ...(await generateOpenApiTypes(root)),
  ...(await generateConfigSchema(root)),
  ...(await generateMetricsContract(root)),
  ...(await generatePluginSdk(root)),
];
let stale = 0;
for (const f of files) {
  const abs = resolve(root, f.path);
  const current = await readFile(abs, 'utf8').catch(() => undefined);
  if (current === f.content) continue;
  if (check) {
    console.error(`stale generated file: ${f.path} (run \`npm run gen\`)`);
    stale++;
  } else {
    await mkdir(dirname(abs), { recursive: true });
    await writeFile(abs, f.content);
    console.log(`wrote ${f.path}`);
  }
}
if (stale > 0) process.exit(1);
if (check) console.log(`generated files up to date (${files.length})`);
