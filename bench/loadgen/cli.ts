/**
 * `npx tsx bench/loadgen/cli.ts --target URL [options]`: runs one workload against any
 * OpenAI-compatible server and prints its report as a Markdown table row and as JSON.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { reportTable, summarize, SPEC_INTERACTIVE_SLO } from './metrics.js';
import { runWorkload, type Arrival } from './run-workload.js';
import { loadWorkload, planWorkload } from './workload.js';

const USAGE = `usage: npx tsx bench/loadgen/cli.ts --target URL [options]
  --target URL            base URL of an OpenAI-compatible server (http://127.0.0.1:8080)
  --model ID              model field of every request                          default: the server's first /v1/models entry
  --workload NAME|PATH    bench/workloads/NAME.json or a spec file              default shared-prefix
  --sessions N            sessions to plan                                      default: the spec's
  --concurrency C         closed loop with C workers                            default 8
  --rate R                open loop: Poisson arrivals of R sessions per second (seeded)
  --requests N            send at most N requests                               default 100
  --duration S            start no request after S seconds                      default 60
  --session-header NAME   name each request's session in this header (llama-orch: X-LLorch-Session)
  --header 'K: V'         an extra request header (repeatable; e.g. 'authorization: Bearer KEY')
  --extra-body JSON       extra body fields, e.g. '{"ignore_eos":true}' for vLLM
  --slo-ttft-ms MS        SLO time to first token                               default ${SPEC_INTERACTIVE_SLO.ttftMs}
  --slo-e2e-ms-per-64 MS  SLO end to end per 64 output tokens (floor: one 64)   default ${SPEC_INTERACTIVE_SLO.e2eMsPer64Tokens}
  --json PATH             also write the report and every request record there
`;

async function firstModel(target: string, headers: Record<string, string>): Promise<string> {
  const res = await fetch(`${target}/v1/models`, { headers });
  const body = (await res.json()) as { data?: { id?: unknown }[] };
  const id = body.data?.[0]?.id;
  if (typeof id !== 'string') throw new Error(`${target}/v1/models lists no model: pass --model`);
  return id;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      target: { type: 'string' },
      model: { type: 'string' },
      workload: { type: 'string' },
      sessions: { type: 'string' },
      concurrency: { type: 'string' },
      rate: { type: 'string' },
      requests: { type: 'string' },
      duration: { type: 'string' },
      'session-header': { type: 'string' },
      header: { type: 'string', multiple: true },
      'extra-body': { type: 'string' },
      'slo-ttft-ms': { type: 'string' },
      'slo-e2e-ms-per-64': { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true || values.target === undefined) {
    process.stdout.write(USAGE);
    process.exit(values.help === true ? 0 : 2);
  }
  const target = values.target.replace(/\/+$/, '');
  const headers: Record<string, string> = {};
  for (const h of values.header ?? []) {
    const i = h.indexOf(':');
    if (i <= 0) throw new Error(`--header '${h}': expected 'Name: value'`);
    headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
  }
  const spec = loadWorkload(values.workload ?? 'shared-prefix');
  const plan = planWorkload(spec, values.sessions === undefined ? {} : { sessions: Number(values.sessions) });
  const arrival: Arrival =
    values.rate === undefined
      ? { kind: 'closed', concurrency: Number(values.concurrency ?? 8) }
      : { kind: 'open', rate: Number(values.rate), seed: spec.seed };
  const extra =
    values['extra-body'] === undefined
      ? undefined
      : (JSON.parse(values['extra-body']) as Record<string, unknown>);
  const run = await runWorkload(plan, {
    target,
    model: values.model ?? (await firstModel(target, headers)),
    arrival,
    maxRequests: Number(values.requests ?? 100),
    maxSeconds: Number(values.duration ?? 60),
    headers,
    sessionHeader: values['session-header'],
    ...(extra ? { extraBody: extra } : {}),
  });
  const report = summarize(run.records, run.seconds, {
    ttftMs: Number(values['slo-ttft-ms'] ?? SPEC_INTERACTIVE_SLO.ttftMs),
    e2eMsPer64Tokens: Number(values['slo-e2e-ms-per-64'] ?? SPEC_INTERACTIVE_SLO.e2eMsPer64Tokens),
  });
  const load =
    arrival.kind === 'closed' ? `${spec.name}, c=${arrival.concurrency}` : `${spec.name}, ${arrival.rate}/s`;
  process.stdout.write(`${reportTable([{ target, load, report }])}\n\n${JSON.stringify(report)}\n`);
  if (values.json !== undefined)
    await writeFile(
      values.json,
      `${JSON.stringify({ target, load, report, records: run.records }, null, 2)}\n`,
    );
  // The keep-alive agent would hold the process open for its idle timeout.
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
