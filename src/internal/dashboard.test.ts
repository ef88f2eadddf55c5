import { expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { createMetrics } from './metrics.ts';

const DEPLOY = join(import.meta.dir, '..', '..', 'deploy');

async function exportedNames(): Promise<Set<string>> {
  const exported = new Set<string>();
  for (const m of await createMetrics().registry.getMetricsAsJSON()) {
    exported.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exported.add(m.name + s);
  }
  return exported;
}

const metricNames = (expr: string) => expr.match(/\b(?:wcp|process|nodejs)_[a-z_]+\b/g) ?? [];

test('every query of deploy/grafana-dashboard.json names a metric wcp exports', async () => {
  const dash = JSON.parse(readFileSync(join(DEPLOY, 'grafana-dashboard.json'), 'utf8')) as {
    panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
  };
  const exported = await exportedNames();
  const missing: string[] = [];
  let queries = 0;
  for (const p of dash.panels) {
    for (const t of p.targets) {
      queries += 1;
      const names = metricNames(t.expr);
      if (names.length === 0) missing.push(`${p.title}: no wcp metric in ${t.expr}`);
      for (const n of names) if (!exported.has(n)) missing.push(`${p.title}: ${n}`);
    }
  }
  expect(queries).toBeGreaterThan(10);
  expect(missing).toEqual([]);
});

test('deploy/alerts.yaml is Prometheus rule groups over exported metrics, with the runway < 24 h alert', async () => {
  const doc = parse(readFileSync(join(DEPLOY, 'alerts.yaml'), 'utf8')) as {
    groups: Array<{ name: string; rules: Array<{ alert: string; expr: string; for?: string; labels?: object }> }>;
  };
  const exported = await exportedNames();
  const rules = doc.groups.flatMap((g) => g.rules);
  for (const r of rules) {
    expect(r.alert).toMatch(/^[A-Za-z0-9_]+$/);
    expect(metricNames(r.expr).length).toBeGreaterThan(0);
    for (const n of metricNames(r.expr)) expect(exported.has(n)).toBe(true);
  }
  expect(rules.find((r) => r.alert === 'WcpRunwayBelow24h')?.expr).toBe('wcp_runway_hours < 24');
});
