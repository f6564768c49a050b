import { SAMPLING_FIELDS, type SamplingOptions } from '../domain/sampling.js';
import type { Engine } from '../domain/types.js';
import { OrchError } from '../errors/orch-error.js';
import type { GenerateRequest } from './adapter.js';

/**
 * What one engine (as configured and as it declares itself) can honour of a request. A field it
 * cannot honour is refused, never dropped: `false` or a string saying why.
 */
export interface RequestSupport {
  /** Sampling fields the engine has a parameter for. */
  readonly sampling: ReadonlySet<keyof SamplingOptions>;
  readonly stop: true | string;
  /** `response_format` types it can constrain output to (`text` always passes). */
  readonly responseFormat: ReadonlySet<'json_object' | 'json_schema'> | string;
  readonly messages: true | string;
  readonly tools: true | string;
}

/** Throws `INVALID_PARAMS` naming the first field of `req` that `support` cannot honour. */
export function checkSupport(engine: Engine, req: GenerateRequest, support: RequestSupport): void {
  const refuse = (field: string, why: string): never => {
    throw new OrchError('INVALID_PARAMS', `${field}: engine '${engine}' cannot honour it (${why})`, {
      engine,
    });
  };
  for (const [key, wire] of Object.entries(SAMPLING_FIELDS) as [keyof SamplingOptions, string][])
    if (req.sampling?.[key] !== undefined && !support.sampling.has(key))
      refuse(wire, 'the engine has no such sampling parameter');
  if (req.stop !== undefined && req.stop.length > 0 && support.stop !== true) refuse('stop', support.stop);
  const format = req.responseFormat?.type;
  if (format !== undefined && format !== 'text') {
    if (typeof support.responseFormat === 'string') refuse('response_format', support.responseFormat);
    else if (!support.responseFormat.has(format))
      refuse('response_format', `no constrained decoding for type '${format}'`);
  }
  if (req.messages !== undefined && support.messages !== true) refuse('messages', support.messages);
  if (req.tools !== undefined && req.tools.length > 0 && support.tools !== true)
    refuse('tools', support.tools);
}

/** Every sampling field: engines that have a parameter for each. */
export const ALL_SAMPLING: ReadonlySet<keyof SamplingOptions> = new Set(
  Object.keys(SAMPLING_FIELDS) as (keyof SamplingOptions)[],
);
