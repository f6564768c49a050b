/**
 * A pool's engine-specific fields, checked against its engine's driver: a field the engine would
 * silently ignore is refused, naming the field, the engines that take it and why this one cannot;
 * then the driver's own checks of its fields.
 */
import type { RawPool } from '../config/schema.js';
import { ENGINES } from '../domain/types.js';
import type { EngineField } from './engine-driver.js';
import { ENGINE_DRIVERS } from './registry.js';

/** The engines that honour a field, and their flags for it, as a refusal names them. */
interface Takers {
  readonly names: string;
  readonly flags: string;
}

/** Whether a pool sets a field, and the refusal for an engine that cannot honour it. */
interface FieldRule {
  readonly isSet: (p: RawPool) => boolean;
  readonly refusal: (engine: string, why: string, t: Takers) => string;
}

/** One rule per engine-specific field (the record's type demands it). */
const FIELDS: Readonly<Record<EngineField, FieldRule>> = {
  tensor_split: {
    isSet: (p) => p.tensor_split !== undefined,
    refusal: (engine, why, t) =>
      `engine '${engine}' cannot split a model unevenly across GPUs (it ${why}); ` +
      `only ${t.names} takes tensor_split (${t.flags}); remove it to shard evenly over devices`,
  },
  'launch.gpu_memory_utilization': {
    isSet: (p) => p.launch?.gpu_memory_utilization !== undefined,
    refusal: (engine, why, t) =>
      `only ${t.names} takes a GPU memory share (${t.flags}); engine '${engine}' ${why}`,
  },
  'launch.embeddings': {
    isSet: (p) => p.launch?.embeddings !== undefined,
    refusal: (engine, why, t) =>
      `only ${t.names} takes an embeddings switch (${t.flags}); engine '${engine}' ${why}`,
  },
};

/** Every problem with the engine-specific fields of raw pool `p` at path `at`. */
export function validateEngineFields(p: RawPool, at: string): string[] {
  const driver = ENGINE_DRIVERS[p.engine];
  const problems: string[] = [];
  for (const [field, { isSet, refusal }] of Object.entries(FIELDS) as [EngineField, FieldRule][]) {
    const support = driver.fields[field];
    if (!isSet(p) || !('refused' in support)) continue;
    const takers = ENGINES.map((e) => ENGINE_DRIVERS[e]).flatMap((d) => {
      const s = d.fields[field];
      return 'honoured' in s ? [{ name: d.displayName, flag: s.honoured }] : [];
    });
    const t = { names: takers.map((x) => x.name).join(', '), flags: takers.map((x) => x.flag).join(', ') };
    problems.push(`${at}.${field}: ${refusal(p.engine, support.refused, t)}`);
  }
  problems.push(...driver.validatePool(p, at));
  return problems;
}
