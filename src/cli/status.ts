/**
 * `llorch status [--watch]` and `llorch pools drain|reload|health ID`: the fleet at a glance and
 * its operations, through the control plane (control-scope key).
 */
import { parseArgs } from 'node:util';
import type { OrchClient } from '../client/orch-client.js';
import { clientFor, CONNECTION_OPTIONS } from './api-call.js';

const common = CONNECTION_OPTIONS;

type Row = readonly string[];

function table(rows: readonly Row[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const gib = (b: unknown) => (typeof b === 'number' ? `${(b / 2 ** 30).toFixed(1)}G` : '-');

/** One screen: pools with readiness, replicas, slots, queue and prediction; GPUs per pool. */
export async function renderStatus(client: OrchClient): Promise<string> {
  const { replica_sets: sets } = await client.replicaSets();
  const pools: Row[] = [
    ['POOL', 'ENGINE', 'MODEL', 'READY', 'REPLICAS', 'SLOTS FREE', 'QUEUE', 'STATE', 'LAST ERROR'],
  ];
  const gpus: Row[] = [['POOL', 'GPU', 'NAME', 'UTIL', 'VRAM USED/TOTAL', 'TEMP']];
  for (const set of sets) {
    for (const poolId of (set['pools'] as string[] | undefined) ?? []) {
      const h = await client.poolHealth(poolId);
      const m = (h['metrics'] ?? {}) as Record<string, number>;
      const replicas = ((h['replicas'] ?? []) as { replica_id: string; state: string }[])
        .map((r) => `${r.replica_id.replace(`${poolId}-`, '')}:${r.state}`)
        .join(' ');
      const lc = h['lifecycle'] as { operation: string; state: string } | undefined;
      const state =
        h['draining'] === true
          ? 'draining'
          : lc
            ? `${lc.operation} ${lc.state}`
            : h['simulated'] === true
              ? 'simulated'
              : '-';
      pools.push([
        poolId,
        String(set['engine']),
        String(set['model_id']),
        h['ready'] === true ? 'yes' : 'no',
        replicas,
        `${m['slots_free'] ?? 0}/${m['slots_total'] ?? 0}`,
        String(m['queue_depth'] ?? 0),
        state,
        typeof h['last_error'] === 'string' ? h['last_error'].slice(0, 60) : '-',
      ]);
      const devices = (h['telemetry'] as { devices?: Record<string, unknown>[] } | undefined)?.devices ?? [];
      for (const d of devices)
        gpus.push([
          poolId,
          String(d['index']),
          typeof d['name'] === 'string' ? d['name'] : '',
          typeof d['utilization'] === 'number' ? `${Math.round(d['utilization'] * 100)}%` : '-',
          `${gib(d['memory_used_bytes'])}/${gib(d['memory_total_bytes'])}`,
          typeof d['temperature_c'] === 'number' ? `${d['temperature_c']}C` : '-',
        ]);
    }
  }
  const out = [table(pools)];
  if (gpus.length > 1) out.push('', table(gpus));
  return `${out.join('\n')}\n`;
}

export async function statusCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      ...common,
      watch: { type: 'boolean', default: false },
      interval: { type: 'string', default: '2000' },
    },
  });
  const client = clientFor(values);
  if (!values.watch) {
    process.stdout.write(await renderStatus(client));
    return;
  }
  for (;;) {
    const screen = await renderStatus(client).catch((err: unknown) => `error: ${(err as Error).message}\n`);
    process.stdout.write(`\x1b[2J\x1b[H${new Date().toISOString()}  ${values.url}\n\n${screen}`);
    await new Promise((r) => setTimeout(r, Number(values.interval)));
  }
}

export async function poolsCommand(args: string[]): Promise<void> {
  const [sub, id, ...rest] = args;
  if ((sub !== 'drain' && sub !== 'reload' && sub !== 'health') || id === undefined)
    throw new Error(
      'usage: llorch pools drain|reload|health ID [--deadline-ms N] [--model REF | --rollback]',
    );
  const { values } = parseArgs({
    args: rest,
    options: {
      ...common,
      'deadline-ms': { type: 'string' },
      model: { type: 'string' },
      rollback: { type: 'boolean', default: false },
    },
  });
  const client = clientFor(values);
  const deadline = values['deadline-ms'] === undefined ? undefined : Number(values['deadline-ms']);
  let out: unknown;
  if (sub === 'health') out = await client.poolHealth(id);
  else if (sub === 'drain') out = await client.drainPool(id, deadline ?? 30_000);
  else {
    if ((values.model === undefined) === !values.rollback)
      throw new Error('pools reload needs exactly one of --model REF or --rollback');
    out = await client.reloadPool(
      id,
      values.model !== undefined ? { new_model_ref: values.model } : { rollback: true },
      deadline,
    );
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}
