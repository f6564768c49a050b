/** The `llorch sim` flags of the Triton dialect: which model repository it serves, and how. */
import { TRITON_ENSEMBLES, type TritonEnsembleVariant } from './triton-repository.js';
import { TRITON_SIM_DEFAULTS, type TritonSimOptions } from './triton.js';

export const TRITON_SIM_USAGE = `  --triton-ensemble legacy|current  Triton: the stock TensorRT-LLM repository served: legacy
                         (random_seed, no exclude_input_in_output, no token counts) or current
                         (seed, exclude_input_in_output, return_num_*_tokens)   default current
  --triton-ensemble-model M  --triton-preprocessing-model M  --triton-tensorrt-llm-model M
                         Triton: the repository's model names   default ensemble, preprocessing, tensorrt_llm
  --triton-tokens-per-response N  Triton: tokens per streamed response (above 1: speculative
                         decoding)                                           default 1
  --triton-tokenizer-dir DIR  Triton: the preprocessing model's tokenizer_dir (its
                         tokenizer_config.json holds the chat template)      default unfilled
`;

/** `parseArgs` options of these flags. */
export const TRITON_SIM_FLAGS = {
  'triton-ensemble': { type: 'string' },
  'triton-ensemble-model': { type: 'string' },
  'triton-preprocessing-model': { type: 'string' },
  'triton-tensorrt-llm-model': { type: 'string' },
  'triton-tokens-per-response': { type: 'string' },
  'triton-tokenizer-dir': { type: 'string' },
} as const;

type FlagValues = { readonly [K in keyof typeof TRITON_SIM_FLAGS]?: string | undefined };

/** The Triton options of a `llorch sim` command line; a Triton flag on another dialect is an error. */
export function tritonSimOptions(dialect: string, v: FlagValues): TritonSimOptions | undefined {
  const given = (Object.keys(TRITON_SIM_FLAGS) as (keyof FlagValues)[]).filter((k) => v[k] !== undefined);
  if (dialect !== 'triton') {
    if (given[0] !== undefined)
      throw new Error(`--${given[0]}: only the triton dialect serves a model repository`);
    return undefined;
  }
  const ensemble = v['triton-ensemble'] ?? TRITON_SIM_DEFAULTS.ensemble;
  if (!(TRITON_ENSEMBLES as readonly string[]).includes(ensemble))
    throw new Error(`--triton-ensemble must be one of ${TRITON_ENSEMBLES.join(', ')}, got '${ensemble}'`);
  const perResponse = Number(v['triton-tokens-per-response'] ?? TRITON_SIM_DEFAULTS.tokensPerResponse);
  if (!Number.isInteger(perResponse) || perResponse < 1)
    throw new Error(
      `--triton-tokens-per-response must be a whole number >= 1, got '${v['triton-tokens-per-response']}'`,
    );
  const d = TRITON_SIM_DEFAULTS.models;
  return {
    ensemble: ensemble as TritonEnsembleVariant,
    models: {
      ensemble: v['triton-ensemble-model'] ?? d.ensemble,
      preprocessing: v['triton-preprocessing-model'] ?? d.preprocessing,
      tensorrtLlm: v['triton-tensorrt-llm-model'] ?? d.tensorrtLlm,
    },
    tokensPerResponse: perResponse,
    tokenizerDir: v['triton-tokenizer-dir'],
  };
}
