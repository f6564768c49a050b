/**
 * Every verification — at ingest, on demand, and before each load — is logged and counted in
 * `catalog_verifications_total{result,reason,engine}` (SPEC §8) in one place, so the three
 * paths cannot drift apart. `result` says what became of it: `verified`, `failed` (refused), or
 * `allowed_unverified` (the permissive policy let an unverified artifact through).
 */
import type { Engine } from '../domain/types.js';
import type { OrchMetrics } from '../metrics/metrics.js';
import type { Logger } from '../util/logger.js';
import type { Verification } from './artifact-verifier.js';

export type VerificationResult = 'verified' | 'failed' | 'allowed_unverified';

export interface VerificationEvent {
  readonly v: Verification;
  /** `ingest`, `verify` (on demand), `load` (before an engine starts). */
  readonly phase: 'ingest' | 'verify' | 'load';
  /** The engine the artifact is loaded into; `any` for checks outside a load. */
  readonly engine: Engine | 'any';
  readonly policy: 'strict' | 'permissive';
  /** True when what was asked proceeds although the artifact is not verified (permissive). */
  readonly allowed: boolean;
  readonly modelId?: string | undefined;
  readonly poolId?: string | undefined;
  readonly path?: string | undefined;
}

/** Logs and counts one verification; returns its `result` label. */
export function recordVerification(
  metrics: OrchMetrics,
  logger: Logger,
  e: VerificationEvent,
): VerificationResult {
  const result: VerificationResult = e.v.ok ? 'verified' : e.allowed ? 'allowed_unverified' : 'failed';
  metrics.inc('catalog_verifications_total', { result, reason: e.v.reason, engine: e.engine });
  const fields = {
    event: 'catalog.verification',
    model_id: e.modelId,
    pool_id: e.poolId,
    path: e.path,
    phase: e.phase,
    engine: e.engine,
    result,
    reason: e.v.reason,
    digest: e.v.digest,
    key_id: e.v.keyId,
    detail: e.v.detail,
    policy: e.policy,
  };
  const what = e.modelId ?? e.path ?? '?';
  const detail = e.v.detail === undefined ? '' : `: ${e.v.detail}`;
  if (result === 'verified') logger.info(fields, `catalog: ${what} verified (${e.phase})`);
  else if (result === 'allowed_unverified')
    logger.warn(
      fields,
      `catalog: ${what} is not verified (${e.phase}: ${e.v.reason}${detail}); allowed by the permissive trust policy`,
    );
  else logger.warn(fields, `catalog: ${what} failed verification (${e.phase}): ${e.v.reason}${detail}`);
  return result;
}
