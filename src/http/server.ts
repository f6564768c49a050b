/** The HTTP server: limits, correlation ids, auth, error envelopes and both planes' routes. */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import type { ResolvedConfig } from '../config/resolved-config.js';
import { OrchError } from '../errors/orch-error.js';
import type { OrchMetrics } from '../metrics/metrics.js';
import { scrapeEngineMetrics } from '../orchestrator/engine-metrics.js';
import type { Orchestrator } from '../orchestrator/orchestrator.js';
import type { Logger } from '../util/logger.js';
import { Authenticator } from './auth.js';
import { makeErrorHandler } from './error-handler.js';
import { Redactor } from '../util/redact.js';
import { createControlValidator, createRequestValidator, loadOpenApi } from './openapi.js';
import { registerControlRoutes } from './routes-control.js';
import { registerNodeRoutes } from './routes-nodes.js';
import { registerArtifactRoutes } from './routes-artifacts.js';
import { registerCatalogRoutes } from './routes-catalog.js';
import type { CatalogService } from '../catalog/catalog-service.js';
import type { ArtifactRegistry } from '../artifacts/artifact-registry.js';
import type { NodeRegistry } from '../nodes/node-registry.js';
import { registerDataRoutes } from './routes-data.js';
import { registerProviderStates } from './routes-provider-states.js';
import { registerDocsRoutes } from './routes-docs.js';
import { openAiRoutes } from './routes-openai.js';

declare module 'fastify' {
  interface FastifyRequest {
    correlationId: string;
  }
}

export interface HttpServerOptions {
  readonly config: ResolvedConfig;
  readonly orchestrator: Orchestrator;
  readonly metrics: OrchMetrics;
  /** The model catalog (SPEC §8). */
  readonly catalog?: CatalogService;
  /** The artifact registry (SPEC §9); absent: artifact endpoints answer 404. */
  readonly artifacts?: ArtifactRegistry;
  /** pool-managerd registrations (SPEC §5); absent: no node endpoints. */
  readonly nodes?: NodeRegistry;
  readonly logger: Logger;
}

const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export async function createHttpServer(opts: HttpServerOptions): Promise<FastifyInstance> {
  const { config, logger } = opts;
  const { limits } = config;
  const app = Fastify({
    bodyLimit: limits.bodyLimitBytes,
    disableRequestLogging: true,
    return503OnClosing: true,
    serverFactory: (handler) => {
      const server: Server = createServer(
        { maxHeaderSize: limits.maxHeaderBytes, requestTimeout: limits.requestTimeoutMs },
        (req: IncomingMessage, res: ServerResponse) => handler(req, res),
      );
      server.keepAliveTimeout = limits.idleTimeoutMs;
      server.headersTimeout = Math.min(limits.requestTimeoutMs || 60_000, 60_000);
      return server;
    },
    clientErrorHandler: (err: NodeJS.ErrnoException, socket: Duplex) => {
      // Oversized headers and malformed requests get an envelope too, never a bare reset.
      const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
      const status = tooLarge ? 431 : 400;
      const body = JSON.stringify(
        new OrchError(
          'INVALID_PARAMS',
          tooLarge ? 'request headers too large' : 'malformed HTTP request',
        ).toEnvelope(),
      );
      if (socket.writable) {
        socket.end(
          `HTTP/1.1 ${status} ${tooLarge ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
            `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
            `X-Correlation-Id: ${randomUUID()}\r\nConnection: close\r\n\r\n${body}`,
        );
      } else socket.destroy();
    },
  });

  const redactor = new Redactor(config.logging.redactPatterns);
  app.decorateRequest('correlationId', '');
  app.addHook('onRequest', async (req, reply) => {
    const given = req.headers['x-correlation-id'];
    req.correlationId = typeof given === 'string' && CORRELATION_ID.test(given) ? given : randomUUID();
    void reply.header('X-Correlation-Id', req.correlationId);
    // Action endpoints (cancel, verify) take no body; an empty body labelled JSON is no body, not
    // a malformed one. Routes that need a body still refuse its absence with INVALID_PARAMS.
    if (req.headers['content-length'] === '0') delete req.headers['content-type'];
  });
  // Bodies other than JSON are refused, except an empty one (e.g. a chunked POST with no data).
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    if (body === '') done(null, undefined);
    else done(new OrchError('INVALID_PARAMS', 'content-type must be application/json'), undefined);
  });
  app.setErrorHandler(makeErrorHandler(logger, redactor));
  app.setNotFoundHandler((req, reply) => {
    const err = new OrchError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0] ?? ''}`);
    const envelope = err.toEnvelope();
    envelope.message = redactor.scrub(envelope.message);
    void reply.code(404).send(envelope);
  });

  const auth = new Authenticator(config.auth.keys);
  const docs = loadOpenApi();
  const validator = createRequestValidator(docs);
  registerDataRoutes(app, {
    orchestrator: opts.orchestrator,
    auth,
    metrics: opts.metrics,
    validateTaskRequest: validator.validateTaskRequest,
    cancelOnDisconnect: config.sse.cancelOnDisconnect,
    heartbeatMs: 15_000,
    logger,
  });
  if (opts.catalog)
    registerCatalogRoutes(app, {
      catalog: opts.catalog,
      auth,
      trustPolicy: config.catalog.trustPolicy,
      validate: createControlValidator(docs),
    });
  if (opts.artifacts)
    registerArtifactRoutes(app, { registry: opts.artifacts, auth, validate: createControlValidator(docs) });
  if (opts.nodes) registerNodeRoutes(app, { nodes: opts.nodes, validate: createControlValidator(docs) });
  registerControlRoutes(app, {
    orchestrator: opts.orchestrator,
    auth,
    validate: createControlValidator(docs),
  });

  // OpenAI's error shape is scoped to its own routes: the plugin's encapsulated context.
  await app.register(openAiRoutes, {
    orchestrator: opts.orchestrator,
    auth,
    catalog: opts.catalog,
    defaults: config.openai,
    logger,
    redactor,
  });

  registerDocsRoutes(app);
  if (config.testing.providerStates)
    registerProviderStates(app, {
      orchestrator: opts.orchestrator,
      catalog: opts.catalog,
      artifacts: opts.artifacts,
    });

  app.get('/metrics', async (_req, reply) => {
    void reply.header('Content-Type', opts.metrics.contentType);
    // Engine scrapes follow llama-orch's own metrics (distinct family names, one exposition).
    // Engines first: their scrape updates contract gauges (kv_cache_usage_ratio) rendered next.
    const engines = await scrapeEngineMetrics(opts.orchestrator.pools, 2_000, opts.metrics);
    const own = await opts.metrics.render();
    return own.endsWith('\n') || own === '' ? own + engines : `${own}\n${engines}`;
  });
  return app;
}
