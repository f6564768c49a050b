/**
 * The API reference, served by the orchestrator itself: the OpenAPI documents as written
 * (`/openapi/data.yaml`, `/openapi/control.yaml`, `/openapi/openai.yaml`) and a browsable page rendering them with
 * Swagger UI (`/docs`), whose assets come from the `swagger-ui-dist` package (no CDN, works
 * offline). Public like `/metrics`: the documents hold no secrets.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { OrchError } from '../errors/orch-error.js';
import { contractsDir } from './openapi.js';

// A Map, not an object literal: a name such as `constructor` must not find a prototype member.
const ASSETS: ReadonlyMap<string, string> = new Map([
  ['swagger-ui.css', 'text/css; charset=utf-8'],
  ['swagger-ui-bundle.js', 'text/javascript; charset=utf-8'],
  ['swagger-ui-standalone-preset.js', 'text/javascript; charset=utf-8'],
  ['favicon-32x32.png', 'image/png'],
]);

const DOCUMENTS: ReadonlySet<string> = new Set(['data.yaml', 'control.yaml', 'openai.yaml']);

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>llama-orch API reference</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
  <div id="reference"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      dom_id: '#reference',
      urls: [
        { url: '/openapi/data.yaml', name: 'Data plane (OrchQueue v1)' },
        { url: '/openapi/control.yaml', name: 'Control plane' },
        { url: '/openapi/openai.yaml', name: 'OpenAI-compatible' },
      ],
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: 'StandaloneLayout',
      deepLinking: true,
    });
  </script>
</body>
</html>
`;

export function registerDocsRoutes(app: FastifyInstance): void {
  const assetsDir = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  const cache = new Map<string, Buffer>();
  const read = async (path: string): Promise<Buffer> => {
    let buf = cache.get(path);
    if (!buf) cache.set(path, (buf = await readFile(path)));
    return buf;
  };

  app.get<{ Params: { plane: string } }>('/openapi/:plane', async (req, reply) => {
    const { plane } = req.params;
    if (!DOCUMENTS.has(plane))
      throw new OrchError('NOT_FOUND', `no OpenAPI document '${plane}' (${[...DOCUMENTS].join(', ')})`);
    return reply.type('application/yaml; charset=utf-8').send(await read(join(contractsDir(), plane)));
  });

  app.get('/docs', async (_req, reply) => reply.type('text/html; charset=utf-8').send(PAGE));

  app.get<{ Params: { asset: string } }>('/docs/:asset', async (req, reply) => {
    const type = ASSETS.get(req.params.asset);
    if (type === undefined) throw new OrchError('NOT_FOUND', `no documentation asset '${req.params.asset}'`);
    return reply
      .type(type)
      .header('Cache-Control', 'public, max-age=86400')
      .send(await read(join(assetsDir, req.params.asset)));
  });
}
