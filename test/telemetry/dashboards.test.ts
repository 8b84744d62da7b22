// Every metric (and label) the Grafana dashboard and the Prometheus alerts reference must exist in the registry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { createMetrics } from '../../service/telemetry/metrics.ts';

const DIR = fileURLToPath(new URL('../../dashboards/', import.meta.url));
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);
/** Labels Prometheus attaches at scrape time. */
const TARGET_LABELS = new Set(['instance', 'job']);

interface Ref {
  metric: string;
  labels: string[];
}

/** Metric selectors and grouping labels in a PromQL expression (a small tokenizer, enough for our files). */
export function promqlRefs(expr: string): { refs: Ref[]; grouping: string[] } {
  let e = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const grouping: string[] = [];
  e = e.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_m, _k, list: string) => {
    grouping.push(...list.split(',').map((s) => s.trim()).filter(Boolean));
    return ' ';
  });
  e = e.replace(/\[[^\]]*\]/g, ' ').replace(/\$\{?\w+\}?/g, ' ');
  const refs: Ref[] = [];
  const re = /([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?(\s*\()?/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(e)) !== null) {
    const [, name, braces, call] = m;
    if (call && !braces) continue; // function
    if (KEYWORDS.has(name!.toLowerCase())) continue;
    if (m.index > 0 && /[0-9.]/.test(e[m.index - 1]!)) continue; // part of a number like 1e3
    const labels = braces ? [...braces.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)].map((x) => x[1]!) : [];
    refs.push({ metric: name!, labels });
  }
  return { refs, grouping };
}

function collectExprs(node: unknown, out: string[]): void {
  if (Array.isArray(node)) for (const x of node) collectExprs(x, out);
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'expr' && typeof v === 'string') out.push(v);
      else collectExprs(v, out);
    }
  }
}

function registryLabels(): Map<string, { type: string; labels: Set<string> }> {
  const metrics = createMetrics();
  const out = new Map<string, { type: string; labels: Set<string> }>();
  for (const metric of metrics.registry.getMetricsAsArray()) {
    // labelNames is not in prom-client's typings but is set on every metric from its config.
    const m = metric as unknown as { name: string; labelNames?: string[]; constructor: { name: string } };
    out.set(m.name, { type: m.constructor.name, labels: new Set(m.labelNames ?? []) });
  }
  return out;
}

function check(exprs: string[], known: Map<string, { type: string; labels: Set<string> }>): string[] {
  const problems: string[] = [];
  for (const expr of exprs) {
    const { refs, grouping } = promqlRefs(expr);
    if (refs.length === 0) problems.push(`no metric in: ${expr}`);
    const available = new Set<string>(TARGET_LABELS);
    for (const { metric, labels } of refs) {
      let entry = known.get(metric);
      let extra: string[] = [];
      const hist = /^(.*)_(bucket|sum|count)$/.exec(metric);
      if (!entry && hist && known.get(hist[1]!)?.type === 'Histogram') {
        entry = known.get(hist[1]!);
        if (hist[2] === 'bucket') extra = ['le'];
      }
      if (!entry) {
        problems.push(`unknown metric ${metric} in: ${expr}`);
        continue;
      }
      const names = new Set([...entry.labels, ...extra, ...TARGET_LABELS]);
      for (const n of names) available.add(n);
      for (const l of labels) if (!names.has(l)) problems.push(`metric ${metric} has no label ${l} in: ${expr}`);
    }
    for (const g of grouping) if (!available.has(g)) problems.push(`grouping label ${g} exists on no metric in: ${expr}`);
  }
  return problems;
}

test('the PromQL checker itself finds metrics, labels and typos', () => {
  const { refs, grouping } = promqlRefs(
    'histogram_quantile(0.99, sum by (le, phase) (rate(tollgate_processing_duration_seconds_bucket{phase="a{b}"}[$__rate_interval]))) > 1e3',
  );
  assert.deepEqual(refs, [{ metric: 'tollgate_processing_duration_seconds_bucket', labels: ['phase'] }]);
  assert.deepEqual(grouping, ['le', 'phase']);
  const known = registryLabels();
  assert.deepEqual(check(['sum(rate(tollgate_requests_total{tenant=~"$tenant"}[5m]))'], known), []);
  assert.equal(check(['rate(tollgate_request_total[5m])'], known).length, 1, 'misspelt metric');
  assert.equal(check(['rate(tollgate_requests_total{tennant="a"}[5m])'], known).length, 1, 'misspelt label');
  assert.equal(check(['sum by (tennant) (rate(tollgate_requests_total[5m]))'], known).length, 1, 'misspelt grouping');
  assert.equal(check(['tollgate_requests_total_bucket'], known).length, 1, 'a counter has no buckets');
});

test('every metric and label in the Grafana dashboard exists in the registry', () => {
  const dash = JSON.parse(fs.readFileSync(DIR + 'grafana-tollgate.json', 'utf8')) as Record<string, any>;
  const exprs: string[] = [];
  collectExprs(dash.panels, exprs);
  collectExprs(dash.annotations, exprs);
  assert.ok(exprs.length >= 25, `dashboard has ${exprs.length} queries`);
  const known = registryLabels();
  assert.deepEqual(check(exprs, known), []);
  // Template variables: label_values(metric, label).
  for (const v of dash.templating.list as Record<string, any>[]) {
    if (v.type !== 'query') continue;
    const m = /^label_values\((\w+),\s*(\w+)\)$/.exec(v.query.query as string);
    assert.ok(m, `variable ${v.name}`);
    assert.ok(known.get(m[1]!)?.labels.has(m[2]!), `variable ${v.name}: ${m[1]} has label ${m[2]}`);
  }
  // The areas the dashboard must cover.
  const all = exprs.join('\n');
  for (const metric of [
    'tollgate_requests_total',
    'tollgate_cost_usd_total',
    'tollgate_tokens_total',
    'gen_ai_client_operation_duration_seconds_bucket',
    'tollgate_upstream_attempts_total',
    'tollgate_budget_utilization_ratio',
    'tollgate_lineage_spool_bytes',
    'tollgate_lineage_records_dropped_total',
  ]) {
    assert.ok(all.includes(metric), `dashboard shows ${metric}`);
  }
  const ids = (dash.panels as { id: number }[]).map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
});

test('every metric and label in the Prometheus alerts exists in the registry; rules are well-formed', () => {
  const doc = YAML.parse(fs.readFileSync(DIR + 'prometheus-alerts.yaml', 'utf8')) as {
    groups: { name: string; rules: { alert: string; expr: string; for?: string; labels: Record<string, string>; annotations: Record<string, string> }[] }[];
  };
  const rules = doc.groups.flatMap((g) => g.rules);
  assert.ok(rules.length >= 10);
  const names = rules.map((r) => r.alert);
  assert.equal(new Set(names).size, names.length, 'alert names are unique');
  for (const r of rules) {
    assert.match(r.alert, /^Tollgate[A-Z]\w+$/);
    assert.ok(['critical', 'warning', 'info'].includes(r.labels.severity!), `${r.alert} severity`);
    assert.ok(r.annotations.summary, `${r.alert} summary`);
    if (r.for !== undefined) assert.match(r.for, /^\d+[smh]$/);
  }
  assert.deepEqual(check(rules.map((r) => r.expr), registryLabels()), []);
  for (const required of ['TollgateLineageRecordsLost', 'TollgateLineageSpoolNearFull', 'TollgateBudgetNearlyExhausted', 'TollgateProviderErrors']) {
    assert.ok(names.includes(required), required);
  }
});
