/**
 * Drives a planned workload against an OpenAI-compatible server. Closed loop: `concurrency`
 * workers, each running one session at a time, its turns one after another. Open loop: sessions
 * start at Poisson arrival times (seeded), whatever is still running; within a session a turn
 * still waits for the previous reply (it resends it). Both stop starting requests at the request
 * bound or the deadline, and wait for the ones in flight.
 */
import type { Dispatcher } from 'undici';
import { mulberry32 } from '../../src/util/mulberry32.js';
import { streamRequest, type RequestRecord } from './stream-request.js';
import { requestFor, type PlannedRequest, type PlannedSession, type WorkloadPlan } from './workload.js';

export type Arrival =
  | { readonly kind: 'closed'; readonly concurrency: number }
  /** `rate`: new sessions per second (for single-turn workloads, requests per second). */
  | { readonly kind: 'open'; readonly rate: number; readonly seed: number };

export interface RunOptions {
  /** Base URL of the server (`http://127.0.0.1:8000`); the route comes from the workload's API. */
  readonly target: string;
  readonly model: string;
  readonly arrival: Arrival;
  /** Requests to send at most. */
  readonly maxRequests: number;
  /** No request starts after this many seconds. */
  readonly maxSeconds: number;
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * A header naming the session on every request (llama-orch: `X-LLorch-Session`, which gives
   * session affinity); undefined: none.
   */
  readonly sessionHeader?: string | undefined;
  /** Extra body fields (vLLM's `ignore_eos: true`, a peer's routing fields). */
  readonly extraBody?: Readonly<Record<string, unknown>>;
  readonly timeoutMs?: number;
  readonly dispatcher?: Dispatcher;
  /** Called as each request ends, with what was sent and the reply text (transcripts, checks). */
  readonly onRecord?: (record: RequestRecord, request: PlannedRequest, reply: string) => void;
}

export interface RunResult {
  /** One per request sent, in the order they ended. */
  readonly records: readonly RequestRecord[];
  /** From the run's start to the end of its last request. */
  readonly seconds: number;
  /** Requests sent (always `records.length`: every request is accounted for). */
  readonly sent: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Arrival offsets in ms of a Poisson process of `rate` per second. */
export function poissonArrivals(rate: number, seed: number, count: number): number[] {
  const rng = mulberry32(seed);
  const out: number[] = [];
  let t = 0;
  for (let i = 0; i < count; i++) {
    out.push(t);
    t += (-Math.log(1 - rng()) / rate) * 1000;
  }
  return out;
}

export async function runWorkload(plan: WorkloadPlan, o: RunOptions): Promise<RunResult> {
  const records: RequestRecord[] = [];
  const t0 = performance.now();
  const deadline = t0 + o.maxSeconds * 1000;
  let sent = 0;
  const mayStart = () => sent < o.maxRequests && performance.now() < deadline;

  const runSession = async (s: PlannedSession): Promise<void> => {
    const replies: string[] = [];
    for (let turn = 0; turn < s.turns.length; turn++) {
      const think = s.turns[turn]?.thinkMs ?? 0;
      if (think > 0) await sleep(think);
      if (!mayStart()) return;
      sent++;
      const req = requestFor(plan, s, turn, replies, {
        model: o.model,
        ...(o.extraBody ? { extra: o.extraBody } : {}),
      });
      const headers = o.sessionHeader ? { ...o.headers, [o.sessionHeader]: s.id } : o.headers;
      const { record, text } = await streamRequest(
        o.target,
        req,
        { session: s.id, turn },
        {
          ...(headers ? { headers } : {}),
          ...(o.dispatcher ? { dispatcher: o.dispatcher } : {}),
          ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
        },
      );
      records.push(record);
      o.onRecord?.(record, req, text);
      // A failed turn ends its session: the next turn would resend a conversation that never happened.
      if (record.error !== undefined) return;
      replies.push(text);
    }
  };

  if (o.arrival.kind === 'closed') {
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let s = plan.sessions[next++]; s !== undefined && mayStart(); s = plan.sessions[next++])
        await runSession(s);
    };
    await Promise.all(Array.from({ length: Math.max(1, o.arrival.concurrency) }, worker));
  } else {
    const at = poissonArrivals(o.arrival.rate, o.arrival.seed, plan.sessions.length);
    const running: Promise<void>[] = [];
    for (const s of plan.sessions) {
      const wait = t0 + (at[s.index] ?? 0) - performance.now();
      if (wait > 0) await sleep(wait);
      if (!mayStart()) break;
      running.push(runSession(s));
    }
    await Promise.all(running);
  }
  const last = records.reduce((m, r) => Math.max(m, r.endMs), t0);
  return { records, seconds: (last - t0) / 1000, sent };
}
