/**
 * What a run reports, as LLM serving benchmarks do (vLLM's `benchmark_serving`, GenAI-Perf,
 * LLMPerf): TTFT, time per output token, inter-token latency, end-to-end latency, throughput,
 * and goodput under an SLO. Percentiles are the repo's nearest-rank `quantile`
 * (`bench/lib/load.ts`): the value at index ⌊q·n⌋ of the sorted sample.
 */
import { markdownTable, quantile } from '../lib/load.js';
import type { RequestRecord } from './stream-request.js';

/**
 * The SLO goodput counts against. Defaults: SPEC §15 `interactive` — time to first token
 * ≤ 900 ms, and ≤ 2.5 s per 64 tokens end to end. The per-64-token budget scales linearly with
 * the request's output tokens, with a floor of one 64-token budget: a request of n output
 * tokens must end within `e2eMsPer64Tokens × max(1, n / 64)` ms of its send (2.5 s for up to
 * 64 tokens, 5 s for 128, 10 s for 256). SPEC §15 states p95 targets over a window; goodput
 * applies the same thresholds to each request, as DistServe's goodput does.
 */
export interface Slo {
  readonly ttftMs: number;
  readonly e2eMsPer64Tokens: number;
}

export const SPEC_INTERACTIVE_SLO: Slo = { ttftMs: 900, e2eMsPer64Tokens: 2500 };

/** Whether a completed request met `slo` (a request without a first token never does). */
export function meetsSlo(r: RequestRecord, slo: Slo): boolean {
  if (r.error !== undefined || r.firstTokenMs === undefined) return false;
  const budget = slo.e2eMsPer64Tokens * Math.max(1, r.outputTokens / 64);
  return r.firstTokenMs - r.sendMs <= slo.ttftMs && r.endMs - r.sendMs <= budget;
}

export interface P3 {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
}

const p3 = (xs: readonly number[]): P3 => {
  const s = [...xs].sort((a, b) => a - b);
  // quantile sorts a copy; handed a sorted one, V8's TimSort makes that linear (large ITL samples).
  return { p50: quantile(s, 0.5), p90: quantile(s, 0.9), p99: quantile(s, 0.99) };
};

/** The figures of one run; latencies in ms, rates per second of `seconds`. NaN where no sample. */
export interface RunReport {
  /** Requests sent. */
  readonly requests: number;
  /** Requests that ended with `[DONE]` and no error. */
  readonly completed: number;
  readonly errors: number;
  /** Failed requests by `RequestRecord.error` (`http_429`, `incomplete`, `ECONNREFUSED`, ...). */
  readonly errorsByStatus: Readonly<Record<string, number>>;
  readonly seconds: number;
  readonly ttftMs: P3;
  /** Per request: (e2e − ttft) / (output tokens − 1), over requests of 2 tokens or more. */
  readonly tpotMs: Omit<P3, 'p99'>;
  /** Every gap between consecutive token arrivals of completed requests. */
  readonly itlMs: P3;
  readonly e2eMs: P3;
  /** Completed requests per second. */
  readonly requestsPerS: number;
  /** Output tokens of completed requests per second. */
  readonly outputTokensPerS: number;
  /** Completed requests meeting the SLO, per second. */
  readonly goodputPerS: number;
  /** Share of sent requests that met the SLO (0..1). */
  readonly sloAttainment: number;
  readonly slo: Slo;
  /** Output tokens reported by usage chunks, and requests that had one. */
  readonly usageTokens: number;
  readonly withUsage: number;
}

/**
 * The report of `records`, over `seconds` of wall time (the run's duration: from its start to
 * the end of its last request).
 */
export function summarize(
  records: readonly RequestRecord[],
  seconds: number,
  slo = SPEC_INTERACTIVE_SLO,
): RunReport {
  const ok = records.filter((r) => r.error === undefined);
  const errorsByStatus: Record<string, number> = {};
  for (const r of records)
    if (r.error !== undefined) errorsByStatus[r.error] = (errorsByStatus[r.error] ?? 0) + 1;
  const ttft: number[] = [];
  const tpot: number[] = [];
  const itl: number[] = [];
  const e2e: number[] = [];
  let tokens = 0;
  let good = 0;
  let usageTokens = 0;
  let withUsage = 0;
  for (const r of records) {
    if (r.usageTokens !== undefined) {
      usageTokens += r.usageTokens;
      withUsage++;
    }
  }
  for (const r of ok) {
    tokens += r.outputTokens;
    e2e.push(r.endMs - r.sendMs);
    if (meetsSlo(r, slo)) good++;
    if (r.firstTokenMs === undefined) continue;
    const t = r.firstTokenMs - r.sendMs;
    ttft.push(t);
    if (r.outputTokens > 1) tpot.push((r.endMs - r.sendMs - t) / (r.outputTokens - 1));
    for (let i = 1; i < r.tokenTimesMs.length; i++)
      itl.push((r.tokenTimesMs[i] ?? 0) - (r.tokenTimesMs[i - 1] ?? 0));
  }
  const tp = p3(tpot);
  return {
    requests: records.length,
    completed: ok.length,
    errors: records.length - ok.length,
    errorsByStatus,
    seconds,
    ttftMs: p3(ttft),
    tpotMs: { p50: tp.p50, p90: tp.p90 },
    itlMs: p3(itl),
    e2eMs: p3(e2e),
    requestsPerS: ok.length / seconds,
    outputTokensPerS: tokens / seconds,
    goodputPerS: good / seconds,
    sloAttainment: records.length === 0 ? NaN : good / records.length,
    slo,
    usageTokens,
    withUsage,
  };
}

export const REPORT_HEADER = [
  'target',
  'load',
  'ok/sent',
  'TTFT p50 ms',
  'p90',
  'p99',
  'TPOT p50 ms',
  'p90',
  'ITL p50 ms',
  'p90',
  'p99',
  'E2E p50 ms',
  'p90',
  'p99',
  'req/s',
  'out tok/s',
  'goodput req/s',
  'SLO met',
  'errors',
] as const;

const f = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : '–');

/** One table row of a report (the columns of {@link REPORT_HEADER}). */
export function reportRow(target: string, load: string, r: RunReport): string[] {
  const errors = Object.entries(r.errorsByStatus)
    .map(([k, n]) => `${k}: ${n}`)
    .join(', ');
  return [
    target,
    load,
    `${r.completed}/${r.requests}`,
    f(r.ttftMs.p50),
    f(r.ttftMs.p90),
    f(r.ttftMs.p99),
    f(r.tpotMs.p50, 2),
    f(r.tpotMs.p90, 2),
    f(r.itlMs.p50, 2),
    f(r.itlMs.p90, 2),
    f(r.itlMs.p99, 2),
    f(r.e2eMs.p50, 0),
    f(r.e2eMs.p90, 0),
    f(r.e2eMs.p99, 0),
    f(r.requestsPerS, 2),
    f(r.outputTokensPerS, 0),
    f(r.goodputPerS, 2),
    Number.isFinite(r.sloAttainment) ? `${(r.sloAttainment * 100).toFixed(1)} %` : '–',
    errors === '' ? '0' : errors,
  ];
}

/** A Markdown table of reports, one row each. */
export function reportTable(rows: readonly { target: string; load: string; report: RunReport }[]): string {
  return markdownTable(
    REPORT_HEADER,
    rows.map((r) => reportRow(r.target, r.load, r.report)),
  );
}
