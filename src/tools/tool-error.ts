/** Tool proxy refusals: envelope errors that also carry the audit decision (SPEC §10). */
import type { ErrorCode } from '../errors/codes.js';
import { OrchError, type OrchErrorOptions } from '../errors/orch-error.js';

/** What the audit line and `tool_calls_total{decision}` record for one call. */
export type ToolDecision = 'allowed' | 'denied' | 'invalid' | 'rate_limited' | 'upstream_error' | 'timeout';

export class ToolError extends OrchError {
  readonly decision: ToolDecision;

  constructor(code: ErrorCode, decision: ToolDecision, message: string, options: OrchErrorOptions = {}) {
    super(code, message, options);
    this.decision = decision;
  }
}

export const invalid = (message: string) => new ToolError('INVALID_PARAMS', 'invalid', message);
export const denied = (message: string) => new ToolError('FORBIDDEN', 'denied', message);
export const upstreamFailed = (message: string, cause?: unknown) =>
  new ToolError('UPSTREAM_FAILED', 'upstream_error', message, cause === undefined ? {} : { cause });
export const timedOut = (ms: number) =>
  new ToolError(
    'UPSTREAM_TIMEOUT',
    'timeout',
    `the tool call did not finish within tools.timeout_ms (${ms} ms)`,
  );
