/**
 * OpenTelemetry tracing (SPEC §12): a span per task from admission through queue wait,
 * dispatch and stream, carrying the correlation id (in-memory exporter), refused admissions as
 * error spans, and the OTLP/HTTP pipeline that `tracing.otlp_endpoint` turns on.
 */
import { createServer } from 'node:http';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OrchClient, type TaskRequest } from '../../src/index.js';
import { KEYS, simPool, startHarness, task, TEST_KEYS, until, type Harness } from '../support/harness.js';

const exporter = new InMemorySpanExporter();
let h: Harness;

const req = (model: string, extra: Record<string, unknown> = {}): TaskRequest =>
  task(model, { engine: 'vllm', ...extra }) as unknown as TaskRequest;

beforeAll(async () => {
  h = await startHarness(
    {
      auth: { keys: TEST_KEYS },
      pools: [
        simPool('traced', 'vllm', { launch: { worker: 'sim', parallel: 1, sim: { tokens_per_s: 500 } } }),
        simPool('timeout', 'vllm', {
          timeouts: { wall_ms: 150 },
          launch: { worker: 'sim', parallel: 1, sim: { tokens_per_s: 20 } },
        }),
      ],
    },
    { tracerProvider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }) },
  );
});
afterAll(() => h.close());

describe('task spans (in-memory exporter)', () => {
  it('one root span per task with queue wait, dispatch and stream children, carrying the correlation id', async () => {
    const client = new OrchClient({ baseUrl: h.url, apiKey: KEYS.alice, correlationId: 'trace-me-1' });
    const t = req('traced', { max_tokens: 12 });
    for await (const _ of client.run(t));
    await until(() =>
      exporter
        .getFinishedSpans()
        .some((s) => s.attributes['llorch.task_id'] === t.task_id && s.name === 'llorch.task'),
    );
    const spans = exporter.getFinishedSpans().filter((s) => s.attributes['llorch.task_id'] === t.task_id);
    const root = spans.find((s) => s.name === 'llorch.task')!;
    expect(root.attributes).toMatchObject({
      'llorch.correlation_id': 'trace-me-1',
      'llorch.pool_id': 'traced',
      'llorch.engine': 'vllm',
      'llorch.outcome': 'completed',
      'llorch.tokens_out': 12,
      'llorch.replica_id': 'traced-r0',
    });
    const children = spans.filter((s) => s !== root);
    expect(children.map((s) => s.name).sort()).toEqual([
      'llorch.dispatch',
      'llorch.queue_wait',
      'llorch.stream',
    ]);
    for (const c of children) {
      expect(c.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
      expect(c.spanContext().traceId).toBe(root.spanContext().traceId);
      expect(c.attributes['llorch.correlation_id']).toBe('trace-me-1');
    }
    // The children tile the root: queue wait, then dispatch up to the first token, then the stream.
    const [q, d, st] = ['llorch.queue_wait', 'llorch.dispatch', 'llorch.stream'].map((n) =>
      children.find((c) => c.name === n)!,
    );
    const ms = (t: [number, number]) => t[0] * 1e3 + t[1] / 1e6;
    expect(ms(q!.startTime)).toBeCloseTo(ms(root.startTime), 0);
    expect(ms(q!.endTime)).toBeCloseTo(ms(d!.startTime), 0);
    expect(ms(d!.endTime)).toBeCloseTo(ms(st!.startTime), 0);
    expect(ms(st!.endTime)).toBeCloseTo(ms(root.endTime), 0);
  });

  it('a failed task ends its span with an error status and code; a refused admission gets an error span', async () => {
    const client = new OrchClient({
      baseUrl: h.url,
      apiKey: KEYS.alice,
      correlationId: 'trace-me-2',
      retry: { maxAttempts: 1 },
    });
    const t = req('timeout', { max_tokens: 200 });
    for await (const _ of client.run(t));
    await client.enqueue(req('no-such-model')).catch(() => undefined);
    await until(() =>
      exporter
        .getFinishedSpans()
        .some((s) => s.attributes['llorch.task_id'] === t.task_id && s.name === 'llorch.task'),
    );
    const root = exporter
      .getFinishedSpans()
      .find((s) => s.attributes['llorch.task_id'] === t.task_id && s.name === 'llorch.task')!;
    expect(root.status.code).toBe(2); // SpanStatusCode.ERROR
    expect(root.attributes['llorch.error_code']).toBe('DECODE_TIMEOUT');
    const refused = exporter
      .getFinishedSpans()
      .find((s) => s.name === 'llorch.admission' && s.attributes['llorch.correlation_id'] === 'trace-me-2')!;
    expect(refused.attributes['llorch.error_code']).toBe('INVALID_PARAMS');
    expect(refused.status.code).toBe(2);
  });
});

describe('OTLP/HTTP export (tracing.otlp_endpoint)', () => {
  it('sends the task spans to the configured collector', async () => {
    const bodies: string[] = [];
    const collector = createServer((r, res) => {
      let b = '';
      r.on('data', (c: Buffer) => (b += c.toString('utf8')));
      r.on('end', () => {
        if (r.url === '/v1/traces') bodies.push(b);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    const port = (collector.address() as { port: number }).port;
    const otlp = await startHarness({
      auth: { keys: TEST_KEYS },
      tracing: { otlp_endpoint: `http://127.0.0.1:${port}/v1/traces`, service_name: 'llorch-test' },
      pools: [simPool('otlp', 'vllm')],
    });
    const client = new OrchClient({ baseUrl: otlp.url, apiKey: KEYS.alice, correlationId: 'otlp-corr-42' });
    for await (const _ of client.run(req('otlp', { max_tokens: 4 })));
    await otlp.close(); // flushes the batch processor
    collector.close();
    const all = bodies.join('\n');
    expect(all).toContain('llorch.task');
    expect(all).toContain('otlp-corr-42');
    expect(all).toContain('llorch-test');
  });
});
