/**
 * Synthetic workloads: a JSON spec (committed under bench/workloads/) planned into sessions of
 * turns with a seeded generator, then turned into OpenAI-compatible request bodies as the run
 * goes (a later turn resends the conversation, with the replies the server actually gave).
 */
import { readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { mulberry32 } from '../../src/util/mulberry32.js';
import { DistributionSchema, sample, zipfIndex } from './distributions.js';
import { wordText } from './prompt-text.js';

export const WorkloadSpecSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, pattern: '^[a-z0-9][a-z0-9-]*$' }),
    description: Type.Optional(Type.String()),
    seed: Type.Integer({ minimum: 0, maximum: 0xffffffff }),
    api: Type.Union([Type.Literal('chat'), Type.Literal('completions')], {
      description: '`chat`: POST /v1/chat/completions; `completions`: POST /v1/completions.',
    }),
    sessions: Type.Integer({ minimum: 1, description: 'Sessions planned (the run may stop sooner).' }),
    turns: DistributionSchema,
    prompt_tokens: DistributionSchema,
    output_tokens: DistributionSchema,
    think_ms: Type.Optional(DistributionSchema),
    shared_prefix: Type.Optional(
      Type.Object(
        {
          prompts: Type.Integer({ minimum: 1, description: 'K system prompts shared by all sessions.' }),
          tokens: DistributionSchema,
          zipf_s: Type.Number({ minimum: 0, description: 'Skew of the choice: P(k) ∝ 1/(k+1)^s.' }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/** A workload as its JSON file states it. */
export type WorkloadSpec = Static<typeof WorkloadSpecSchema>;

export interface PlannedTurn {
  /** The new user message of this turn. */
  readonly user: string;
  readonly maxTokens: number;
  /** Wait after the previous turn's reply before sending this one (0 for the first turn). */
  readonly thinkMs: number;
}

export interface PlannedSession {
  readonly index: number;
  /** Sent as `user` and, where asked, as llama-orch's session header. */
  readonly id: string;
  /** Index into {@link WorkloadPlan.systemPrompts}, or undefined without shared prefixes. */
  readonly prefix: number | undefined;
  readonly turns: readonly PlannedTurn[];
}

export interface WorkloadPlan {
  readonly spec: WorkloadSpec;
  readonly systemPrompts: readonly string[];
  readonly sessions: readonly PlannedSession[];
}

/** Validates a parsed spec file; the error names every offending field. */
export function parseWorkloadSpec(raw: unknown): WorkloadSpec {
  if (Value.Check(WorkloadSpecSchema, raw)) return raw;
  const errors = [...Value.Errors(WorkloadSpecSchema, raw)].map((e) => `${e.path || '/'}: ${e.message}`);
  throw new Error(`invalid workload spec: ${errors.slice(0, 8).join('; ')}`);
}

/** A committed workload by name (`shared-prefix`) or a spec file by path. */
export function loadWorkload(nameOrPath: string): WorkloadSpec {
  const path =
    nameOrPath.endsWith('.json') || nameOrPath.includes('/')
      ? nameOrPath
      : new URL(`../workloads/${nameOrPath}.json`, import.meta.url);
  return parseWorkloadSpec(JSON.parse(readFileSync(path, 'utf8')));
}

/** A seed for stream `i` of seed `seed`, spread so neighbouring streams are unrelated. */
function streamSeed(seed: number, i: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(i + 1, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  return (h ^ (h >>> 15)) >>> 0;
}

/**
 * The sessions of a workload. Each session draws from a generator of its own (seeded by the
 * workload seed and its index), so the first N sessions are the same whatever `sessions` says,
 * and the system prompts come from another.
 */
export function planWorkload(spec: WorkloadSpec, overrides: { sessions?: number } = {}): WorkloadPlan {
  const sp = spec.shared_prefix;
  const prefixRng = mulberry32(streamSeed(spec.seed, -1));
  const systemPrompts = sp
    ? Array.from({ length: sp.prompts }, (_, k) => {
        // A distinct opening per prompt: prompts never share a prefix by chance.
        const n = Math.max(1, sample(sp.tokens, prefixRng));
        return `system ${k}: ${wordText(n, prefixRng)}`;
      })
    : [];
  const count = overrides.sessions ?? spec.sessions;
  const width = String(count - 1).length;
  const sessions = Array.from({ length: count }, (_, index): PlannedSession => {
    const rng = mulberry32(streamSeed(spec.seed, index));
    const prefix = sp ? zipfIndex(sp.prompts, sp.zipf_s, rng) : undefined;
    const nTurns = Math.max(1, sample(spec.turns, rng));
    const turns = Array.from({ length: nTurns }, (_, t) => {
      const user = wordText(Math.max(1, sample(spec.prompt_tokens, rng)), rng);
      const maxTokens = Math.max(1, sample(spec.output_tokens, rng));
      const think = spec.think_ms ? sample(spec.think_ms, rng) : 0;
      return { user, maxTokens, thinkMs: t === 0 ? 0 : think };
    });
    return { index, id: `${spec.name}-${spec.seed}-${String(index).padStart(width, '0')}`, prefix, turns };
  });
  return { spec, systemPrompts, sessions };
}

export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

/** One request of a run: the route and the JSON body, as sent. */
export interface PlannedRequest {
  readonly path: '/v1/chat/completions' | '/v1/completions';
  readonly body: Record<string, unknown>;
}

/**
 * The request of turn `turn` of `session`, given the replies to its earlier turns: the whole
 * conversation so far plus the new user message. `extra` fields are merged into the body
 * (e.g. vLLM's `ignore_eos`), and may not override the ones set here.
 */
export function requestFor(
  plan: WorkloadPlan,
  session: PlannedSession,
  turn: number,
  replies: readonly string[],
  o: { model: string; extra?: Record<string, unknown> },
): PlannedRequest {
  const current = session.turns[turn];
  if (current === undefined) throw new Error(`session ${session.id} has no turn ${turn}`);
  const messages: ChatMessage[] = [];
  const system = session.prefix === undefined ? undefined : plan.systemPrompts[session.prefix];
  if (system !== undefined) messages.push({ role: 'system', content: system });
  for (let t = 0; t < turn; t++) {
    messages.push({ role: 'user', content: session.turns[t]?.user ?? '' });
    messages.push({ role: 'assistant', content: replies[t] ?? '' });
  }
  messages.push({ role: 'user', content: current.user });
  const common = {
    ...o.extra,
    model: o.model,
    max_tokens: current.maxTokens,
    stream: true,
    stream_options: { include_usage: true },
    user: session.id,
  };
  if (plan.spec.api === 'chat') return { path: '/v1/chat/completions', body: { ...common, messages } };
  // The completions API has no roles: the conversation as plain text, ending where the reply goes.
  const prompt = `${messages.map((m) => `${m.role}: ${m.content}`).join('\n')}\nassistant:`;
  return { path: '/v1/completions', body: { ...common, prompt } };
}
