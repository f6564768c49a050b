/** `llorch submit`: enqueue one task, print its tokens as they stream, then a summary line. */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { OrchHttpError } from '../client/orch-http-error.js';
import type { TaskRequest } from '../client/types.js';
import { clientFor, CONNECTION_OPTIONS } from './api-call.js';

export async function submitCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      prompt: { type: 'string', short: 'p' },
      ...CONNECTION_OPTIONS,
      'max-tokens': { type: 'string', default: '64' },
      session: { type: 'string' },
      priority: { type: 'string', default: 'interactive' },
      model: { type: 'string', default: 'tiny' },
      engine: { type: 'string', default: 'llamacpp' },
      ctx: { type: 'string', default: '512' },
      'deadline-ms': { type: 'string', default: '60000' },
      seed: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (values.prompt === undefined) throw new Error('submit needs --prompt TEXT');
  const client = clientFor(values);
  const taskId = randomUUID();
  const t0 = performance.now();
  const body: TaskRequest = {
    task_id: taskId,
    session_id: values.session ?? randomUUID(),
    workload: 'completion',
    model_ref: values.model,
    engine: values.engine as TaskRequest['engine'],
    ctx: Number(values.ctx),
    priority: values.priority as TaskRequest['priority'],
    prompt: values.prompt,
    max_tokens: Number(values['max-tokens']),
    deadline_ms: Number(values['deadline-ms']),
  };
  if (values.seed !== undefined) body.seed = Number(values.seed);
  try {
    const accepted = await client.enqueue(body);
    if (values.json) process.stdout.write(`${JSON.stringify({ event: 'accepted', data: accepted })}\n`);
    let firstTokenMs: number | undefined;
    let tokens = 0;
    for await (const ev of client.streamTask(taskId)) {
      const now = performance.now() - t0;
      if (values.json) {
        process.stdout.write(`${JSON.stringify(ev)}\n`);
      } else if (ev.event === 'token') {
        process.stdout.write(ev.data.t);
      }
      if (ev.event === 'token') {
        firstTokenMs ??= now;
        tokens++;
      }
      if (ev.event === 'error') {
        process.stderr.write(`\nerror ${ev.data.code}: ${ev.data.message}\n`);
        process.exitCode = 1;
      }
      if (ev.event === 'end' && !values.json) {
        const decodeMs = ev.data.decode_ms;
        const rate = decodeMs > 0 ? (tokens / decodeMs) * 1000 : 0;
        const ttft = firstTokenMs === undefined ? 'n/a' : `${firstTokenMs.toFixed(1)} ms`;
        const wait = ev.data.queue_ms;
        process.stdout.write(
          `\n-- task ${taskId}: ${tokens} tokens${ev.data.canceled === true ? ' (canceled)' : ''}, ` +
            `queue wait ${wait === undefined ? 'n/a' : `${wait} ms`}, time to first token ${ttft}, ` +
            `${rate.toFixed(0)} tokens/s\n`,
        );
      }
    }
  } catch (err) {
    if (err instanceof OrchHttpError) {
      process.stderr.write(`llorch submit: ${err.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw err;
  }
}
