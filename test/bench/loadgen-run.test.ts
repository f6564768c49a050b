/**
 * The load generator against real servers on loopback: a simulated vLLM engine (every request
 * accounted for, tokens counted as usage reports them, multi-turn replies resent), and a
 * hand-written SSE server (headers and fields sent, tokens counted from chunks without usage).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { summarize } from '../../bench/loadgen/metrics.js';
import { runWorkload } from '../../bench/loadgen/run-workload.js';
import type { RequestRecord } from '../../bench/loadgen/stream-request.js';
import { planWorkload, type PlannedRequest, type WorkloadSpec } from '../../bench/loadgen/workload.js';
import { SIM_DEFAULTS, SimEngine } from '../../src/sim/sim-engine.js';
import { startSimServer, type RunningSim } from '../../src/sim/sim-server.js';

const SPEC: WorkloadSpec = {
  name: 'loopback',
  seed: 11,
  api: 'chat',
  sessions: 4,
  turns: { kind: 'fixed', value: 3 },
  prompt_tokens: { kind: 'uniform', min: 4, max: 12 },
  output_tokens: { kind: 'uniform', min: 3, max: 9 },
  shared_prefix: { prompts: 2, tokens: { kind: 'fixed', value: 30 }, zipf_s: 1 },
};

let engine: SimEngine;
let sim: RunningSim;
let base: string;
let canned: Server;
let cannedBase: string;
const seen: { headers: IncomingMessage['headers']; body: Record<string, unknown> }[] = [];

beforeAll(async () => {
  engine = new SimEngine({
    ...SIM_DEFAULTS,
    modelId: 'm',
    engineVersion: 'sim-vllm-1',
    slots: 2,
    ctx: 32_768,
    tokensPerSecond: 5_000,
    prefillTokensPerSecond: 1_000_000,
  });
  sim = await startSimServer({ dialect: 'vllm', engine, host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${sim.port}`;
  // Three tokens in two chunks, split mid-event and mid-character, and no usage chunk.
  canned = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      seen.push({ headers: req.headers, body: JSON.parse(raw) as Record<string, unknown> });
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const frames =
        'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\n\n' +
        'data: {"choices":[{"delta":{"content":"hé"}}]}\n\n' +
        'data: {"choices":[{"delta":{"content":"y"}}]}\n\ndata: [DONE]\n\n';
      const bytes = Buffer.from(frames);
      const cut = bytes.indexOf(Buffer.from('é')) + 1;
      res.write(bytes.subarray(0, cut), () => res.end(bytes.subarray(cut)));
    });
  });
  await new Promise<void>((r) => canned.listen(0, '127.0.0.1', r));
  cannedBase = `http://127.0.0.1:${(canned.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await sim.close();
  await new Promise<void>((r) => canned.close(() => r()));
});

const checkTokens = (records: readonly RequestRecord[]) => {
  for (const r of records) {
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(200);
    // The simulator streams one token per chunk and reports usage: both counts agree.
    expect(r.usageTokens).toBeDefined();
    expect(r.outputTokens).toBe(r.usageTokens);
    expect(r.tokenTimesMs).toHaveLength(r.outputTokens);
    expect(r.firstTokenMs).toBeGreaterThanOrEqual(r.sendMs);
    expect(r.endMs).toBeGreaterThanOrEqual(r.tokenTimesMs.at(-1) ?? Infinity);
  }
};

describe('runWorkload on a simulated vLLM engine', () => {
  it('closed loop: sends every planned turn, counts tokens as usage does, resends the replies', async () => {
    const plan = planWorkload(SPEC);
    const before = { ...engine.stats };
    const sent: { record: RequestRecord; request: PlannedRequest; reply: string }[] = [];
    const run = await runWorkload(plan, {
      target: base,
      model: 'm',
      arrival: { kind: 'closed', concurrency: 2 },
      maxRequests: 1000,
      maxSeconds: 600,
      onRecord: (record, request, reply) => sent.push({ record, request, reply }),
    });
    expect(run.sent).toBe(12);
    expect(run.records).toHaveLength(12);
    checkTokens(run.records);
    const planned = plan.sessions.flatMap((s) =>
      s.turns.map((t, turn) => ({ session: s.id, turn, max: t.maxTokens })),
    );
    expect(run.records.map((r) => [r.session, r.turn, r.outputTokens]).sort()).toEqual(
      planned.map((p) => [p.session, p.turn, p.max]).sort(),
    );
    const usage = run.records.reduce((n, r) => n + (r.usageTokens ?? 0), 0);
    expect(engine.stats.requests - before.requests).toBe(12);
    expect(engine.stats.generatedTokens - before.generatedTokens).toBe(usage);
    // Each later turn carries the earlier turns' replies exactly as they arrived.
    for (const { record, request } of sent) {
      const messages = request.body['messages'] as { role: string; content: string }[];
      expect(messages).toHaveLength(2 + 2 * record.turn);
      for (let t = 0; t < record.turn; t++) {
        const earlier = sent.find((x) => x.record.session === record.session && x.record.turn === t);
        expect(earlier?.reply).toHaveLength(earlier?.record.outputTokens ?? -1);
        expect(messages[2 + 2 * t]).toEqual({ role: 'assistant', content: earlier?.reply });
      }
    }
    const report = summarize(run.records, run.seconds);
    expect(report.completed).toBe(12);
    expect(report.usageTokens).toBe(usage);
    expect(report.withUsage).toBe(12);
  });

  it('open loop on the completions API: stops at the request bound, accounting for each one', async () => {
    const plan = planWorkload({
      ...SPEC,
      api: 'completions',
      sessions: 20,
      turns: { kind: 'fixed', value: 1 },
    });
    const run = await runWorkload(plan, {
      target: base,
      model: 'm',
      arrival: { kind: 'open', rate: 200, seed: 5 },
      maxRequests: 7,
      maxSeconds: 600,
    });
    expect(run.sent).toBe(7);
    expect(run.records).toHaveLength(7);
    checkTokens(run.records);
    expect(new Set(run.records.map((r) => r.session)).size).toBe(7);
  });

  it('counts refused requests by status and ends their sessions', async () => {
    engine.faults = { refuse: true };
    try {
      const run = await runWorkload(planWorkload(SPEC), {
        target: base,
        model: 'm',
        arrival: { kind: 'closed', concurrency: 2 },
        maxRequests: 1000,
        maxSeconds: 600,
      });
      // One refused first turn per session, no later turn.
      expect(run.records).toHaveLength(4);
      const report = summarize(run.records, run.seconds);
      expect(report.completed).toBe(0);
      expect(report.errors).toBe(4);
      const status = run.records[0]?.status ?? 0;
      expect(status).toBeGreaterThanOrEqual(400);
      expect(report.errorsByStatus).toEqual({ [`http_${status}`]: 4 });
    } finally {
      engine.faults = {};
    }
  });

  it('records a refused connection as an error, not a lost request', async () => {
    const run = await runWorkload(planWorkload({ ...SPEC, sessions: 2 }), {
      target: 'http://127.0.0.1:1',
      model: 'm',
      arrival: { kind: 'closed', concurrency: 1 },
      maxRequests: 1000,
      maxSeconds: 600,
    });
    expect(run.records).toHaveLength(2);
    expect(run.records.every((r) => r.status === 0 && r.error === 'ECONNREFUSED')).toBe(true);
  });
});

describe('runWorkload on a hand-written SSE server', () => {
  it('sends user and the session header, and counts chunks with text when no usage comes', async () => {
    seen.length = 0;
    const plan = planWorkload({ ...SPEC, sessions: 1, turns: { kind: 'fixed', value: 2 } });
    const run = await runWorkload(plan, {
      target: cannedBase,
      model: 'm',
      arrival: { kind: 'closed', concurrency: 1 },
      maxRequests: 10,
      maxSeconds: 600,
      sessionHeader: 'X-LLorch-Session',
      headers: { authorization: 'Bearer k' },
      extraBody: { ignore_eos: true },
    });
    expect(run.records).toHaveLength(2);
    for (const r of run.records) {
      expect(r.error).toBeUndefined();
      expect(r.usageTokens).toBeUndefined();
      expect(r.outputTokens).toBe(2);
    }
    const id = plan.sessions[0]?.id;
    expect(
      seen.map((s) => [s.headers['x-llorch-session'], s.headers['authorization'], s.body['user']]),
    ).toEqual([
      [id, 'Bearer k', id],
      [id, 'Bearer k', id],
    ]);
    expect(seen[0]?.body).toMatchObject({
      stream: true,
      stream_options: { include_usage: true },
      ignore_eos: true,
    });
    // The reply, reassembled across the split character, is resent in the second turn.
    expect((seen[1]?.body['messages'] as unknown[])[2]).toEqual({ role: 'assistant', content: 'héy' });
  });
});
