/**
 * Admission's trust step (SPEC §17 §2.1): a cheap local refusal before any engine round trip.
 * Under `strict`, a task whose model is unverified — every pool of its engine serving it failed
 * verification before load, or serves a catalog entry that failed a later verification — is
 * `403 UNTRUSTED_ARTIFACT`, naming the cause, rather than a retriable "pool unready".
 */
import type { SubmitInput } from '../domain/submit.js';
import { OrchError } from '../errors/orch-error.js';
import type { PoolRuntime } from './pool-runtime.js';

/** Why a pool's model is untrusted under the policy (undefined: trusted, unknown, or permissive). */
export type UntrustedCause = (poolId: string, modelId: string) => string | undefined;

/** Throws UNTRUSTED_ARTIFACT when every pool serving the task's model with its engine is untrusted. */
export function refuseUntrusted(
  pools: readonly PoolRuntime[],
  input: Pick<SubmitInput, 'modelRef' | 'engine'>,
  untrusted: UntrustedCause | undefined,
): void {
  if (!untrusted) return;
  const serving = pools.filter(
    (p) =>
      p.config.engine === input.engine &&
      (p.config.model.id === input.modelRef ||
        (p.config.model.digest !== undefined && p.config.model.digest === input.modelRef)),
  );
  const first = serving[0];
  if (!first) return;
  const causes = serving.map((p) => untrusted(p.id, p.config.model.id));
  const cause = causes[0];
  if (cause === undefined || causes.some((c) => c === undefined)) return;
  throw new OrchError(
    'UNTRUSTED_ARTIFACT',
    `model_ref: '${input.modelRef}' is not verified and the strict trust policy refuses it (${cause})`,
    { engine: first.config.engine, poolId: first.id },
  );
}
