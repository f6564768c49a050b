/**
 * One fuzz case end to end (plan → request → answer → violations), the fast-check property over
 * all of them, and the survey mode of `npm run fuzz`: every failure class of a long run, each
 * shrunk to a small request.
 */
import fc from 'fast-check';
import { buildRequest, describeRequest, planArbitrary, type BuiltRequest, type CasePlan } from './cases.js';
import { WORLD, type FuzzClient } from './fuzz-target.js';
import { judge, type Answer, type Violation } from './oracle.js';
import { fuzzOperations, type FuzzOperation } from './operations.js';

export interface CaseResult {
  readonly req: BuiltRequest;
  readonly answer: Answer;
  readonly violations: readonly Violation[];
}

export const OPERATIONS: readonly FuzzOperation[] = fuzzOperations();
export const PLANS: fc.Arbitrary<CasePlan> = planArbitrary(OPERATIONS, WORLD);

export async function runCase(client: FuzzClient, plan: CasePlan): Promise<CaseResult> {
  const req = buildRequest(OPERATIONS, WORLD, plan);
  const answer = await client.send(req);
  return { req, answer, violations: judge(req, answer) };
}

function showAnswer(a: Answer): string {
  if (a.kind !== 'answer') return `${a.kind}: ${a.error}`;
  const cid = a.headers['x-correlation-id'];
  const body = a.text.length > 300 ? a.text.slice(0, 300) + '…' : a.text;
  return `${a.status} (X-Correlation-Id: ${cid === undefined ? 'absent' : String(cid)}) ${body}`;
}

/** The failure message of a case: the rules broken, the request, the answer. */
export function describeFailure(r: CaseResult): string {
  return [
    ...r.violations.map((v) => `✗ ${v.rule}: ${v.detail}`),
    describeRequest(r.req),
    `  answer: ${showAnswer(r.answer)}`,
  ].join('\n');
}

/** The property: every case's answer breaks no rule (the message shows the shrunk case). */
export function fuzzProperty(client: FuzzClient): fc.IAsyncPropertyWithHooks<[CasePlan]> {
  return fc.asyncProperty(PLANS, async (plan) => {
    const r = await runCase(client, plan);
    if (r.violations.length > 0) throw new Error('\n' + describeFailure(r));
  });
}

/** A failure class: one rule, one status, one operation. */
export function classOf(r: CaseResult, v: Violation): string {
  const status = r.answer.kind === 'answer' ? String(r.answer.status) : '-';
  return `${v.rule} | ${status} | ${r.req.method} ${r.req.op.path}`;
}

export interface SurveyClass {
  readonly key: string;
  count: number;
  readonly firstRun: number;
  readonly first: CaseResult;
  shrunk?: CaseResult;
  /** Traits shared by every failing case of the class: the likely cause. */
  common: Set<string>;
}

export interface Survey {
  readonly runs: number;
  readonly seed: number;
  readonly statuses: Map<number | string, number>;
  readonly classes: Map<string, SurveyClass>;
  readonly unsendable: number;
  readonly invalid: number;
}

/** Traits of a request, to tell what the failing cases of a class have in common. */
export function traits(r: CaseResult): Set<string> {
  const out = new Set<string>();
  out.add(`mutation: ${r.req.note.replace(/^[^ ]+ (:=|nested)/, '$1').slice(0, 60)}`);
  for (const reason of r.req.invalid) out.add(`invalid: ${reason.replace(/\d+/g, 'N').slice(0, 60)}`);
  for (const [k, v] of Object.entries(r.req.headers))
    if (k !== 'authorization') out.add(`header ${k}: ${v.slice(0, 30)}`);
  const q = r.req.path.indexOf('?');
  if (q >= 0) out.add(`query ${r.req.path.slice(q + 1, q + 40)}`);
  return out;
}

/**
 * Runs `runs` cases from `seed`, grouping violations by class; then replays the first case of
 * each class from its seed and run index and lets fast-check shrink it.
 */
export async function survey(
  client: FuzzClient,
  seed: number,
  runs: number,
  progress: (done: number) => void = () => {},
  shrinkMs = 30_000,
): Promise<Survey> {
  const statuses = new Map<number | string, number>();
  const classes = new Map<string, SurveyClass>();
  let run = 0;
  let unsendable = 0;
  let invalid = 0;
  await fc.assert(
    fc.asyncProperty(PLANS, async (plan) => {
      const index = run++;
      const r = await runCase(client, plan);
      const s = r.answer.kind === 'answer' ? r.answer.status : r.answer.kind;
      statuses.set(s, (statuses.get(s) ?? 0) + 1);
      if (r.answer.kind === 'unsendable') unsendable++;
      if (r.req.invalid.length > 0) invalid++;
      for (const v of r.violations) {
        const key = classOf(r, v);
        const c = classes.get(key);
        const t = traits(r);
        if (c === undefined) classes.set(key, { key, count: 1, firstRun: index, first: r, common: t });
        else {
          c.count++;
          c.common = new Set([...c.common].filter((x) => t.has(x)));
        }
      }
      if (run % 500 === 0) progress(run);
    }),
    { seed, numRuns: runs },
  );
  progress(run);
  for (const c of classes.values()) {
    console.log(`  shrinking ${c.key} (${c.count} cases)`);
    let last: CaseResult | undefined;
    await fc.check(
      fc.asyncProperty(PLANS, async (plan) => {
        const r = await runCase(client, plan);
        if (r.violations.some((v) => classOf(r, v) === c.key)) {
          last = r;
          return false;
        }
        return true;
      }),
      // Shrinking a slow case (a 10 s answer) must not eat the run: stop at the smallest so far.
      { seed, path: String(c.firstRun), numRuns: 1, endOnFailure: false, interruptAfterTimeLimit: shrinkMs },
    );
    // The last failure fast-check saw is the smallest it found (undefined: did not reproduce alone).
    if (last !== undefined) c.shrunk = last;
  }
  return { runs, seed, statuses, classes, unsendable, invalid };
}
