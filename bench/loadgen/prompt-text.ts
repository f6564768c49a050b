/**
 * Deterministic filler text of a given length in tokens. Words come from a list of common
 * English words that the BPE tokenizers of current models (Llama 3, Qwen 2.5, Mistral, GPT-4's
 * cl100k) each encode as one token with their leading space, so N words are about N tokens on a
 * real engine. The simulated engines tokenize bytes: there N words are about
 * N × {@link SIM_BYTES_PER_TOKEN} tokens.
 */
const WORDS = (
  'the of and to in is that for it as was with be by on not he this are or his from at which ' +
  'but have an they you were her she there been one all we their has would when if so no will ' +
  'more can out up about who them some could into time only what its new other than then first ' +
  'also after any like these two may people over such most made after where many through back ' +
  'years way much well should because each just those how work used between own under while ' +
  'last state world long day good great same year home small part place case point group end ' +
  'number water house old light hand high side city line name form head life order power line ' +
  'land room face air kind game book night road music story plan table field river paper model ' +
  'data open system early local level young human public market change report party price value'
).split(' ');

/** Mean bytes per word-token of the generated text, the space included. */
export const SIM_BYTES_PER_TOKEN = WORDS.reduce((n, w) => n + w.length + 1, 0) / WORDS.length;

/** `tokens` words drawn from `rng`, separated by single spaces. */
export function wordText(tokens: number, rng: () => number): string {
  const out: string[] = new Array<string>(tokens);
  for (let i = 0; i < tokens; i++) out[i] = WORDS[Math.floor(rng() * WORDS.length)] ?? 'the';
  return out.join(' ');
}
