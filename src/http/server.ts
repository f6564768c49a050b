/** The HTTP server: limits, correlation ids, auth, error envelopes and both planes' routes. */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { ResolvedConfig } from '../config/resolved-config.js';
import { OrchError } from '../errors/orch-error.js';
import type { OrchMetrics } from '../metrics/metrics.js';
import { EngineMetricsCache, readyTopology, scrapeEngineMetrics } from '../orchestrator/engine-metrics.js';
import type { Orchestrator } from '../orchestrator/orchestrator.js';
import type { Logger } from '../util/logger.js';
import { Authenticator } from './auth.js';
import { makeErrorHandler, toOrchError } from './error-handler.js';
import { registerJsonParser } from './json-body.js';
import { configSecrets, Redactor } from '../util/redact.js';
import { createControlValidator, createRequestValidator, loadOpenApi } from './openapi.js';
import { registerControlRoutes } from './routes-control.js';
import { registerNodeRoutes } from './routes-nodes.js';
import { registerNodeListRoutes } from './routes-node-list.js';
import { registerPluginRoutes } from './routes-plugins.js';
import type { PluginHost } from '../plugins/plugin-host.js';
import { registerArtifactRoutes } from './routes-artifacts.js';
import { registerCatalogRoutes } from './routes-catalog.js';
import type { CatalogService } from '../catalog/catalog-service.js';
import type { ArtifactRegistry } from '../artifacts/artifact-registry.js';
import type { NodeRegistry } from '../nodes/node-registry.js';
import { registerDataRoutes } from './routes-data.js';
import { registerTaskListRoutes } from './routes-task-list.js';
import { registerUiRoutes } from './routes-ui.js';
import { registerToolRoutes } from './routes-tools.js';
import { ToolProxy } from '../tools/tool-proxy.js';
import { registerProviderStates } from './routes-provider-states.js';
import { registerDocsRoutes } from './routes-docs.js';
import { openAiRoutes } from './routes-openai.js';
import { openAiErrorBody } from './openai/openai-error.js';

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
  /** Policy plugins (SPEC §10); absent: none configured. */
  readonly plugins?: PluginHost;
  /** The tool proxy, when shared with the plugins; absent: one of its own. */
  readonly tools?: ToolProxy;
  readonly logger: Logger;
}

const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Longest path parameter, as sent: the longest documented one (a 512-character model id) even
 * fully %-encoded. Longer ones are refused with the envelope before routing.
 */
export const MAX_PARAM_LENGTH = 512 * 3;

/** Paths of the OpenAI-compatible surface (its errors are OpenAI-shaped). */
const OPENAI_PATH = /^\/v1\/(?:chat\/completions|completions|embeddings|models)(?:[/?]|$)/;

/** The routes that submit tasks (their refusals are admission decisions). */
const SUBMISSIONS: ReadonlySet<string> = new Set([
  '/v1/tasks',
  '/v1/chat/completions',
  '/v1/completions',
  '/v1/embeddings',
]);

/** Routes whose handlers authenticate an API key (node endpoints use node credentials). */
const needsApiKey = (route: string | undefined): boolean =>
  route !== undefined && route.startsWith('/v1/') && !route.startsWith('/v1/nodes/');

export async function createHttpServer(opts: HttpServerOptions): Promise<FastifyInstance> {
  const { config, logger } = opts;
  const { limits } = config;
  const secrets = configSecrets(config);
  const redactor = new Redactor(config.logging.redactPatterns, secrets);
  // A secret sent as the correlation id would be echoed in the header and every log line.
  const correlationIdOf = (given: string | string[] | undefined): string =>
    typeof given === 'string' && CORRELATION_ID.test(given) && redactor.scrub(given) === given
      ? given
      : randomUUID();
  const app = Fastify({
    bodyLimit: limits.bodyLimitBytes,
    disableRequestLogging: true,
    return503OnClosing: true,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Refusals before routing (bad %-encoding, an over-long path parameter) get the envelope and
    // a correlation id like every other answer.
    frameworkErrors: (err, req, reply) => {
      const id = correlationIdOf(req.headers['x-correlation-id']);
      const code = (err as { code?: string }).code;
      const orch =
        code === 'FST_ERR_BAD_URL'
          ? new OrchError('INVALID_PARAMS', 'path: not a valid %-encoded URL path')
          : code === 'FST_ERR_MAX_PARAM_LENGTH'
            ? new OrchError('INVALID_PARAMS', `path: a path parameter exceeds ${MAX_PARAM_LENGTH} characters`)
            : toOrchError(err);
      // Refused before routing: the OpenAI surface's paths still get OpenAI's error shape.
      void (reply as FastifyReply)
        .code(orch.httpStatus)
        .header('X-Correlation-Id', id)
        .send(OPENAI_PATH.test(req.url) ? openAiErrorBody(orch) : orch.toEnvelope());
    },
    serverFactory: (handler) => {
      const server: Server = createServer(
        {
          maxHeaderSize: limits.maxHeaderBytes,
          requestTimeout: limits.requestTimeoutMs,
          // Node checks the request timeout on this interval (30 s by default): a short
          // configured timeout must be enforced near its value.
          ...(limits.requestTimeoutMs > 0
            ? { connectionsCheckingInterval: Math.min(30_000, Math.max(50, limits.requestTimeoutMs / 4)) }
            : {}),
        },
        (req: IncomingMessage, res: ServerResponse) => handler(req, res),
      );
      server.keepAliveTimeout = limits.idleTimeoutMs;
      server.headersTimeout = Math.min(limits.requestTimeoutMs || 60_000, 60_000);
      return server;
    },
    clientErrorHandler: (err: NodeJS.ErrnoException, socket: Duplex) => {
      // Oversized headers and malformed requests get an envelope too, never a bare reset.
      const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
      const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
      const status = tooLarge ? 431 : timedOut ? 408 : 400;
      const body = JSON.stringify(
        (timedOut
          ? new OrchError(
              'INVALID_PARAMS',
              `request not received within limits.request_timeout_ms (${limits.requestTimeoutMs} ms)`,
              { retriable: true },
            )
          : new OrchError('INVALID_PARAMS', tooLarge ? 'request headers too large' : 'malformed HTTP request')
        ).toEnvelope(),
      );
      const reason = tooLarge
        ? 'Request Header Fields Too Large'
        : timedOut
          ? 'Request Timeout'
          : 'Bad Request';
      if (socket.writable) {
        socket.end(
          `HTTP/1.1 ${status} ${reason}\r\n` +
            `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
            `X-Correlation-Id: ${randomUUID()}\r\nConnection: close\r\n\r\n${body}`,
        );
      } else socket.destroy();
    },
  });

  const auth = new Authenticator(config.auth.keys, secrets);
  app.decorateRequest('correlationId', '');
  app.addHook('onRequest', async (req, reply) => {
    req.correlationId = correlationIdOf(req.headers['x-correlation-id']);
    void reply.header('X-Correlation-Id', req.correlationId);
    // Action endpoints (cancel, verify) take no body; an empty body labelled JSON is no body, not
    // a malformed one. Routes that need a body still refuse its absence with INVALID_PARAMS.
    if (req.headers['content-length'] === '0') delete req.headers['content-type'];
    // The credential before the body: an unauthenticated client gets its 401 without any of its
    // body read or parsed (SPEC §11). Scopes stay the handlers' check.
    if (!needsApiKey(req.routeOptions.url)) return;
    try {
      auth.requireCredential(req.headers.authorization);
    } catch (err) {
      // A refused submission is an admission decision: one log line, as for every refusal (SPEC §12).
      if (err instanceof OrchError && req.method === 'POST' && SUBMISSIONS.has(req.routeOptions.url ?? ''))
        logger.info(
          { event: 'admission.rejected', correlation_id: req.correlationId, code: err.code, stage: 'edge' },
          redactor.scrub(err.message),
        );
      throw err;
    }
  });
  registerJsonParser(app);
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
    document: docs.data,
  });
  registerTaskListRoutes(app, { orchestrator: opts.orchestrator, auth, document: docs.data });
  const tools = opts.tools ?? new ToolProxy({ config, metrics: opts.metrics, logger });
  registerToolRoutes(app, { tools, auth });
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
  registerNodeListRoutes(app, { orchestrator: opts.orchestrator, auth, nodes: opts.nodes });
  registerPluginRoutes(app, { auth, plugins: opts.plugins });
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
  await registerUiRoutes(app);
  if (config.testing.providerStates)
    registerProviderStates(app, {
      orchestrator: opts.orchestrator,
      catalog: opts.catalog,
      artifacts: opts.artifacts,
      nodes: opts.nodes,
      validateTaskRequest: validator.validateTaskRequest,
      tools,
    });

  const engineMetrics = new EngineMetricsCache(
    () => scrapeEngineMetrics(opts.orchestrator.pools, 2_000, opts.metrics),
    () => readyTopology(opts.orchestrator.pools),
    config.metrics.engineRefreshMs,
  );
  app.addHook('onClose', async () => engineMetrics.stop());
  app.get('/metrics', async (req, reply) => {
    if (config.metrics.requireKey) auth.authenticate(req.headers.authorization, 'metrics');
    void reply.header('Content-Type', opts.metrics.contentType);
    // Engine scrapes follow llama-orch's own metrics (distinct family names, one exposition).
    // Engines first: their scrape updates contract gauges (kv_cache_usage_ratio) rendered next.
    const engines = await engineMetrics.current();
    const own = await opts.metrics.render();
    return own.endsWith('\n') || own === '' ? own + engines : `${own}\n${engines}`;
  });
  return app;
}
