/** The OTLP/HTTP trace pipeline built from `tracing:` in the configuration (off when absent). */
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  TraceIdRatioBasedSampler,
  ParentBasedSampler,
} from '@opentelemetry/sdk-trace-base';

export interface OtlpTracingOptions {
  readonly endpoint: string;
  readonly serviceName: string;
  readonly sampleRatio: number;
  readonly headers: Readonly<Record<string, string>>;
}

export function otlpTracerProvider(o: OtlpTracingOptions): BasicTracerProvider {
  return new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': o.serviceName }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(o.sampleRatio) }),
    spanProcessors: [
      new BatchSpanProcessor(new OTLPTraceExporter({ url: o.endpoint, headers: { ...o.headers } })),
    ],
  });
}
