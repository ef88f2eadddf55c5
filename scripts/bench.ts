/**
 * `npm run bench`: the figures of issue 12 — what operators pay and wait for — each measured in this run from
 * chain truth or from another process, beside its reference (measured in the same run) and its target.
 *
 *   npm run bench                          a table for people on stdout (name, value, unit, reference, target,
 *                                          notes), then the closing list of every figure against its target
 *   npm run bench -- --json                one JSON object per figure per line on stdout:
 *                                          {"name","value","unit","reference"?,"target"?,"note"?}
 *   npm run bench -- --only e2e,claim      run only these groups (store, start, dispatch, claim, heartbeat, e2e)
 *   npm run bench -- --soak-minutes 2      shorten the memory soak of the e2e group (default 10; printed)
 *   npm run bench -- --soak-activities N   activities the accelerated soak (group soak) runs (default 100,000)
 * Harness variables (read by the bench, never by wcp):
 *   WCP_BENCH_BUN_OPTIONS="--cpu-prof --cpu-prof-dir=DIR"   Bun options for every dist/wcp the groups start
 *   WCP_BENCH_LOG_DIR=DIR, WCP_BENCH_LOG_LEVEL=debug          keep each daemon's output there, at that level
 *   WCP_BENCH_SNAPSHOT_DIR=DIR                                 the soak group keeps heap snapshots of every thread
 *   WCP_DEBUG_CPU_PROF_DIR=DIR                                 passed on to wcp: a CPU profile per worker thread
 *   WCP_BENCH_E2E_ONLY=batch                                   development: the e2e group's other runs shrink to 10
 *
 * Progress lines and per-group durations go to stderr, so `--json` stdout stays one figure per line. A group
 * that fails is reported on stderr and the others still run; the exit code is then 1.
 */
import { claim } from './bench/claim.ts';
import { type BenchContext, type BenchGroup, type Figure, quietLogger } from './bench/common.ts';
import { dispatch } from './bench/dispatch.ts';
import { e2e } from './bench/e2e.ts';
import { heartbeat } from './bench/heartbeat.ts';
import { soak } from './bench/soak.ts';
import { start } from './bench/start.ts';
import { store } from './bench/store.ts';

const GROUPS: readonly BenchGroup[] = [store, start, dispatch, claim, heartbeat, soak, e2e];

const USAGE = `usage: bun scripts/bench.ts [--json] [--only GROUP[,GROUP…]] [--soak-minutes M] [--soak-activities N]
groups: ${GROUPS.map((g) => g.name).join(', ')}`;

interface Args {
  json: boolean;
  only: string[] | null;
  soakMinutes: number;
  soakActivities: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { json: false, only: null, soakMinutes: 10, soakActivities: 100_000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--json') args.json = true;
    else if (a === '--soak-minutes' || a.startsWith('--soak-minutes=')) {
      const v = Number(a === '--soak-minutes' ? argv[++i] : a.slice('--soak-minutes='.length));
      if (!(v > 0)) fail('--soak-minutes needs a positive number');
      args.soakMinutes = v;
    } else if (a === '--soak-activities' || a.startsWith('--soak-activities=')) {
      const v = Number(a === '--soak-activities' ? argv[++i] : a.slice('--soak-activities='.length));
      if (!(Number.isInteger(v) && v >= 1000)) fail('--soak-activities needs a whole number of at least 1000');
      args.soakActivities = v;
    } else if (a === '--only' || a.startsWith('--only=')) {
      const v = a === '--only' ? argv[++i] : a.slice('--only='.length);
      if (!v) fail('--only needs a group name');
      args.only = [
        ...(args.only ?? []),
        ...v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      ];
    } else if (a === '--help' || a === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else fail(`unknown argument ${a}`);
  }
  for (const name of args.only ?? []) if (!GROUPS.some((g) => g.name === name)) fail(`unknown group ${name}`);
  return args;
}

function fail(msg: string): never {
  process.stderr.write(`bench: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

const fmtS = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function fmtValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
}

/** The figure as one JSON line: name, value, unit, and reference, target and note when there are. */
function jsonLine(f: Figure): string {
  const o: {
    name: string;
    value: number | null;
    unit: string;
    reference?: string | number;
    target?: string;
    note?: string;
  } = {
    name: f.name,
    value: Number.isFinite(f.value) ? f.value : null,
    unit: f.unit,
  };
  if (f.reference !== undefined) o.reference = f.reference;
  if (f.target !== undefined) o.target = f.target;
  if (f.notes !== undefined) o.note = f.notes;
  return JSON.stringify(o);
}

function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out;
}

/** The table for people: one row per figure, its notes wrapped below it. */
function table(rows: Array<{ group: string; figure: Figure }>, durations: Map<string, number>): string {
  const cols = rows.map(({ figure: f }) => [
    f.name,
    fmtValue(f.value),
    f.unit,
    f.reference === undefined ? '—' : String(f.reference),
    f.target ?? '—',
  ]);
  const head = ['name', 'value', 'unit', 'reference', 'target'];
  const width = head.map((h, i) =>
    Math.min(i === 3 ? 70 : 48, Math.max(h.length, ...cols.map((c) => (c[i] as string).length))),
  );
  const cell = (s: string, i: number) => (i === 1 ? s.padStart(width[i] as number) : s.padEnd(width[i] as number));
  const lines: string[] = [];
  lines.push(head.map(cell).join('  ').trimEnd());
  lines.push(width.map((w) => '-'.repeat(w)).join('  '));
  let group = '';
  rows.forEach(({ group: g, figure: f }, r) => {
    if (g !== group) {
      group = g;
      const d = durations.get(g);
      lines.push(`[${g}]${d === undefined ? '' : ` (${fmtS(d)})`}`);
    }
    lines.push((cols[r] as string[]).map(cell).join('  ').trimEnd());
    if (f.notes) for (const l of wrap(f.notes, 108)) lines.push(`    ${l}`);
  });
  return `${lines.join('\n')}\n`;
}

/** The closing note: every figure that has a target, its value beside it. */
function closing(rows: Array<{ group: string; figure: Figure }>): string {
  const out = ['', 'against the targets (issues 12 and 24):'];
  for (const { figure: f } of rows) {
    if (f.target === undefined) continue;
    const ref = f.reference === undefined ? '' : `  [${f.reference}]`;
    out.push(`  ${f.name} = ${fmtValue(f.value)} ${f.unit}; target ${f.target}${ref}`);
  }
  return `${out.join('\n')}\n`;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const groups = args.only ? GROUPS.filter((g) => args.only?.includes(g.name)) : GROUPS;
  const t0 = performance.now();
  const rows: Array<{ group: string; figure: Figure }> = [];
  const durations = new Map<string, number>();
  const failed: string[] = [];
  for (const group of groups) {
    const ctx: BenchContext = {
      log: (line) => process.stderr.write(`[bench:${group.name}] ${line}\n`),
      quietLogger,
      soakMinutes: args.soakMinutes,
      soakActivities: args.soakActivities,
    };
    ctx.log(`start (issue ${group.issue})`);
    const g0 = performance.now();
    try {
      const figures = await group.run(ctx);
      for (const f of figures) {
        rows.push({ group: group.name, figure: f });
        if (args.json) process.stdout.write(`${jsonLine(f)}\n`);
      }
    } catch (e) {
      failed.push(group.name);
      ctx.log(`FAILED: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
    durations.set(group.name, performance.now() - g0);
    ctx.log(`done in ${fmtS(durations.get(group.name) as number)}`);
  }
  if (!args.json) process.stdout.write(table(rows, durations) + closing(rows));
  process.stderr.write(
    `[bench] memory soak length: ${args.soakMinutes} min (e2e); accelerated soak: ${args.soakActivities} activities asked (soak)\n`,
  );
  const summary = [...durations].map(([g, ms]) => `${g} ${fmtS(ms)}`).join(', ');
  process.stderr.write(
    `[bench] groups: ${summary}; total ${fmtS(performance.now() - t0)}${failed.length ? `; FAILED: ${failed.join(', ')}` : ''}\n`,
  );
  return failed.length ? 1 : 0;
}

// Worker pools, gRPC channels and child processes of the groups may keep the event loop alive: exit explicitly.
main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
