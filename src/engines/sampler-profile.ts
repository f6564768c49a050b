import type { Sampling, SamplingOptions } from '../domain/sampling.js';
import type { Engine } from '../domain/types.js';
import { OrchError } from '../errors/orch-error.js';

/**
 * Sampler profile versions every adapter implements (ORCH-3058). A version is a frozen mapping
 * from task parameters to engine sampling parameters, documented in each engine's
 * `map-request.ts`; changing a mapping means adding a version.
 */
export const SAMPLER_PROFILES = ['v1'] as const;

export function checkSamplerProfile(engine: Engine, version: string): void {
  if ((SAMPLER_PROFILES as readonly string[]).includes(version)) return;
  throw new OrchError(
    'INVALID_PARAMS',
    `sampler_profile_version: '${version}' is not supported (supported: ${SAMPLER_PROFILES.join(', ')})`,
    { engine },
  );
}

/**
 * Sampler profile `v1`: seeded nucleus sampling. The same `{prompt, seed}` gives the same stream
 * on every replica of a replica set (same engine build, model and single-slot mode), and
 * different seeds give different streams. Each engine's `map-request.ts` maps these values to
 * its own parameter names; docs/engines.md ("Sampler profile v1") has the table.
 */
export const SAMPLER_V1 = {
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0,
  repetitionPenalty: 1,
} as const;

/** The values an engine request carries: the task's sampling fields over profile v1's. */
export function samplingOf(opts: SamplingOptions | undefined): Sampling {
  return {
    temperature: opts?.temperature ?? SAMPLER_V1.temperature,
    topP: opts?.topP ?? SAMPLER_V1.topP,
    topK: opts?.topK ?? SAMPLER_V1.topK,
    minP: opts?.minP ?? SAMPLER_V1.minP,
    repeatPenalty: opts?.repeatPenalty ?? SAMPLER_V1.repetitionPenalty,
    presencePenalty: opts?.presencePenalty ?? 0,
    frequencyPenalty: opts?.frequencyPenalty ?? 0,
  };
}
