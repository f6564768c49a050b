/**
 * Grafana dashboards and Prometheus alerting rules (SPEC §12, §15) are checked against the
 * metrics contract: every query parses (promtool), names only contract metrics, and uses only
 * labels those metrics carry; the alert rules pass `promtool check rules` and their unit tests.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

interface ContractMetric {
  name: string;
  type: string;
  labels: string[];
}
const CONTRACT = JSON.parse(readFileSync('contracts/metrics.json', 'utf8')) as {
  metrics: ContractMetric[];
  process_metrics: { required: string[] };
};
const BY_NAME = new Map(CONTRACT.metrics.map((m) => [m.name, m]));
const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
]);

/** Metric names and label names a PromQL expression uses. */
function analyse(expr: string): { metrics: string[]; labels: string[] } {
  const labels: string[] = [];
  let e = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  e = e.replace(/\{([^}]*)\}/g, (_m, body: string) => {
    for (const l of body.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)) labels.push(l[1]!);
    return ' ';
  });
  e = e.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_m, body: string) => {
    labels.push(
      ...body
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
    );
    return ' ';
  });
  e = e.replace(/\[[^\]]*\]/g, ' ');
  const metrics: string[] = [];
  for (const m of e.matchAll(/(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g))
    if (m[2] === undefined && !KEYWORDS.has(m[1]!)) metrics.push(m[1]!);
  return { metrics, labels };
}

/** The contract entry of a series name (histogram series map to their family). */
function resolve(name: string): { labels: string[]; bucket: boolean } | undefined {
  const direct = BY_NAME.get(name);
  if (direct) return { labels: direct.labels, bucket: false };
  for (const suffix of ['_bucket', '_sum', '_count']) {
    const h = BY_NAME.get(name.slice(0, -suffix.length));
    if (name.endsWith(suffix) && h?.type === 'histogram')
      return { labels: h.labels, bucket: suffix === '_bucket' };
  }
  if (CONTRACT.process_metrics.required.includes(name)) return { labels: [], bucket: false };
  return undefined;
}

function checkExpr(where: string, expr: string): string[] {
  const { metrics, labels } = analyse(expr);
  const problems: string[] = [];
  if (metrics.length === 0) problems.push(`${where}: no metric in '${expr}'`);
  const allowed = new Set<string>();
  for (const m of metrics) {
    const r = resolve(m);
    if (!r) problems.push(`${where}: '${m}' is not a contract metric`);
    else {
      r.labels.forEach((l) => allowed.add(l));
      if (r.bucket) allowed.add('le');
    }
  }
  for (const l of labels)
    if (!allowed.has(l)) problems.push(`${where}: label '${l}' is not on ${metrics.join(', ')}`);
  return problems;
}

function promtool(args: string[], cwd?: string): { ok: boolean; out: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8', ...(cwd ? { cwd } : {}) });
  if (r.error) throw new Error("promtool not found: install Debian's `prometheus` package (.ci/run does)");
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

interface Panel {
  title: string;
  type: string;
  datasource: { uid: string };
  gridPos: { h: number; w: number; x: number; y: number };
  targets: { expr: string; refId: string }[];
}
const DASHBOARDS = readdirSync('contracts/dashboards')
  .filter((f) => f.endsWith('.json'))
  .map((f) => ({
    file: f,
    doc: JSON.parse(readFileSync(join('contracts/dashboards', f), 'utf8')) as {
      uid: string;
      title: string;
      panels: Panel[];
      __inputs: { name: string }[];
    },
  }));
const panelExprs = (d: (typeof DASHBOARDS)[number]) =>
  d.doc.panels.flatMap((p) =>
    p.targets.map((t) => ({ where: `${d.file} › ${p.title}`, expr: t.expr.replace(/\$pool_id/g, '.*') })),
  );

describe('Grafana dashboards (contracts/dashboards)', () => {
  it('ship admission, replica load/SLO and fleet health, importable with a Prometheus input', () => {
    expect(DASHBOARDS.map((d) => d.file).sort()).toEqual([
      'admission.json',
      'fleet-health.json',
      'replicas-slo.json',
    ]);
    for (const { doc } of DASHBOARDS) {
      expect(doc.uid).toMatch(/^llorch-/);
      expect(doc.__inputs.map((i) => i.name)).toEqual(['DS_PROMETHEUS']);
      for (const p of doc.panels) {
        expect(p.datasource.uid).toBe('${DS_PROMETHEUS}');
        expect(p.targets.length).toBeGreaterThan(0);
        expect(p.gridPos.w).toBeGreaterThan(0);
      }
    }
  });

  it('every query names only contract metrics with their own labels', () => {
    const problems = DASHBOARDS.flatMap((d) =>
      panelExprs(d).flatMap(({ where, expr }) => checkExpr(where, expr)),
    );
    expect(problems).toEqual([]);
  });

  it('cover what operators look for first', () => {
    const used = (file: string) =>
      new Set(
        panelExprs(DASHBOARDS.find((d) => d.file === file)!).flatMap(({ expr }) => analyse(expr).metrics),
      );
    const admission = used('admission.json');
    for (const m of [
      'tasks_enqueued_total',
      'tasks_rejected_total',
      'queue_depth',
      'admission_backpressure_events_total',
      'admission_share',
    ])
      expect(admission, m).toContain(m);
    const replicas = used('replicas-slo.json');
    for (const m of [
      'latency_first_token_ms_bucket',
      'latency_decode_ms_bucket',
      'replica_slots',
      'replica_slots_busy',
      'kv_cache_usage_ratio',
      'gpu_utilization',
      'vram_used_bytes',
    ])
      expect(replicas, m).toContain(m);
    const fleet = used('fleet-health.json');
    for (const m of ['pool_ready', 'pool_restarts_total', 'pool_breaker_open']) expect(fleet, m).toContain(m);
  });

  it('every query is valid PromQL (promtool)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'llorch-dash-'));
    const rules = {
      groups: [
        {
          name: 'panels',
          rules: DASHBOARDS.flatMap(panelExprs).map(({ expr }, i) => ({ record: `llorch:panel_${i}`, expr })),
        },
      ],
    };
    writeFileSync(join(dir, 'panels.yml'), JSON.stringify(rules));
    const r = promtool(['check', 'rules', join(dir, 'panels.yml')]);
    expect(r.out).toContain('SUCCESS');
    expect(r.ok).toBe(true);
  });

  it('the query checker rejects unknown metrics and foreign labels', () => {
    expect(checkExpr('x', 'sum by (tenant) (rate(tasks_enqueued_total[5m]))')).toHaveLength(1);
    expect(checkExpr('x', 'rate(tasks_exploded_total[5m])')).toHaveLength(1);
    expect(
      checkExpr('x', 'histogram_quantile(0.9, sum by (le) (rate(latency_decode_ms_bucket[5m])))'),
    ).toEqual([]);
  });
});

describe('alerting rules (contracts/alerts)', () => {
  const file = 'contracts/alerts/llama-orch.rules.yml';
  const doc = parse(readFileSync(file, 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
  const rules = doc.groups.flatMap((g) => g.rules);

  it('cover SLO breaches, open breakers, unready pools and queue saturation', () => {
    expect(rules.map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        'LlamaOrchInteractiveTtftSloBreach',
        'LlamaOrchInteractiveErrorRateHigh',
        'LlamaOrchBatchErrorRateHigh',
        'LlamaOrchSloNotMet',
        'LlamaOrchBreakerOpen',
        'LlamaOrchSloBreakerOpen',
        'LlamaOrchPoolUnready',
        'LlamaOrchQueueSaturated',
      ]),
    );
  });

  it('use only contract metrics and labels', () => {
    expect(rules.flatMap((r) => checkExpr(r.alert, r.expr))).toEqual([]);
  });

  it('pass promtool check rules and promtool test rules', () => {
    const check = promtool(['check', 'rules', file]);
    expect(check.out).toMatch(/SUCCESS: \d+ rules found/);
    const test = promtool(['test', 'rules', 'llama-orch.rules.test.yml'], 'contracts/alerts');
    expect(test.out).toContain('SUCCESS');
    expect(test.ok).toBe(true);
  });
});
