import { expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createMetrics } from './metrics.ts';

test('every query of deploy/grafana-dashboard.json names a metric wcp exports', async () => {
  const dash = JSON.parse(
    readFileSync(join(import.meta.dir, '..', '..', 'deploy', 'grafana-dashboard.json'), 'utf8'),
  ) as {
    panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
  };
  const exported = new Set<string>();
  for (const m of await createMetrics().registry.getMetricsAsJSON()) {
    exported.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exported.add(m.name + s);
  }
  const missing: string[] = [];
  let queries = 0;
  for (const p of dash.panels) {
    for (const t of p.targets) {
      queries += 1;
      const names = t.expr.match(/\b(?:wcp|process|nodejs)_[a-z_]+\b/g) ?? [];
      if (names.length === 0) missing.push(`${p.title}: no wcp metric in ${t.expr}`);
      for (const n of names) if (!exported.has(n)) missing.push(`${p.title}: ${n}`);
    }
  }
  expect(queries).toBeGreaterThan(10);
  expect(missing).toEqual([]);
});
