/**
 * The Triton models a pool talks to (`launch.triton`): the ensemble it generates with, the
 * tokenizer model that counts prompt tokens, and the TensorRT-LLM model whose engine holds the
 * version and sequence limit. The defaults are the names of the stock `inflight_batcher_llm`
 * repository; a repository laid out otherwise names its own.
 */
import type { ResolvedTritonModels } from '../../config/resolved-config.js';
import type { RawPool } from '../../config/schema.js';

export const TRITON_MODEL_DEFAULTS: ResolvedTritonModels = {
  ensemble: 'ensemble',
  preprocessing: 'preprocessing',
  tensorrtLlm: 'tensorrt_llm',
};

const FIELDS = [
  ['ensemble_model', 'ensemble'],
  ['preprocessing_model', 'preprocessing'],
  ['tensorrt_llm_model', 'tensorrtLlm'],
] as const;

/**
 * The resolved model names of a Triton pool (undefined for other engines), pushing a problem
 * naming the field for each setting that cannot be honoured: `launch.triton` or
 * `launch.sim.triton_ensemble` on a pool of another engine, or two roles given the same model
 * (the ensemble cannot be its own tokenizer). The names' form is checked by the schema.
 */
export function resolveTritonModels(
  p: RawPool,
  at: string,
  problems: string[],
): ResolvedTritonModels | undefined {
  const raw = p.launch?.triton;
  if (p.engine !== 'triton') {
    if (raw !== undefined)
      problems.push(`${at}.launch.triton: names Triton models, but the pool's engine is '${p.engine}'`);
    if (p.launch?.sim?.triton_ensemble !== undefined)
      problems.push(
        `${at}.launch.sim.triton_ensemble: selects a Triton model repository, but the pool's engine is '${p.engine}'`,
      );
    return undefined;
  }
  const names = {
    ensemble: raw?.ensemble_model ?? TRITON_MODEL_DEFAULTS.ensemble,
    preprocessing: raw?.preprocessing_model ?? TRITON_MODEL_DEFAULTS.preprocessing,
    tensorrtLlm: raw?.tensorrt_llm_model ?? TRITON_MODEL_DEFAULTS.tensorrtLlm,
  };
  const seen = new Map<string, string>();
  for (const [field, key] of FIELDS) {
    const other = seen.get(names[key]);
    if (other !== undefined)
      problems.push(
        `${at}.launch.triton.${field}: '${names[key]}' is already the ${other}; each role needs its own model`,
      );
    else seen.set(names[key], field);
  }
  return names;
}
