/**
 * Which folder may import which: every `import … from '…'`, `import '…'`, `export … from '…'` and `import('…')`
 * of every .ts file under src/, test/, scripts/ and examples/ is resolved to a repo path and checked against
 * RULES. A violation prints as `file → import (rule)`. Package and `node:` imports are not checked.
 *
 * The self-check at the end feeds the checker synthetic sources, so the test is shown able to fail.
 */
import { describe, expect, test } from 'bun:test';
import { readFileSync, readdirSync } from 'node:fs';
import { join, posix, relative, sep } from 'node:path';

const ROOT = join(import.meta.dir, '..');
const SCANNED = ['src', 'test', 'scripts', 'examples'];

/**
 * One direction rule for the files under `from` (a repo-relative prefix; a trailing `/` means a folder). With
 * `allow`, a relative import must land in `from`'s own folder or under one of the listed prefixes; with `deny`,
 * it must not land under any of them unless under one of `except`.
 */
interface Rule {
  from: string;
  allow?: string[];
  deny?: string[];
  except?: string[];
}

const WORKER_THREAD_ALLOW = ['src/chain/', 'src/store/', 'src/internal/'];

const RULES: Rule[] = [
  { from: 'src/internal/', allow: ['src/runtime/'] },
  // The neutral protocol module: the bridge and the SDK import it, it imports neither.
  { from: 'src/taskstream/', allow: ['src/internal/', 'proto/'] },
  // The executor SDK ships on its own: the protocol and the shared internals, nothing of the daemon.
  { from: 'src/wep/', allow: ['src/taskstream/', 'src/internal/'] },
  { from: 'src/chain/', allow: ['src/internal/'] },
  // The store lock's kernel lock is runtime-specific (bun:ffi, Deno's FsFile): src/runtime/ holds that glue.
  { from: 'src/store/', allow: ['src/internal/', 'src/runtime/'] },
  // configs/ holds the embedded default config text, not code.
  { from: 'src/config/', allow: ['src/internal/', 'src/runtime/', 'configs/'] },
  { from: 'src/txmgr/', allow: ['src/chain/', 'src/store/', 'src/internal/'] },
  // Worker-thread components: nothing that runs in the supervisor, and not each other.
  { from: 'src/poller/', allow: WORKER_THREAD_ALLOW },
  { from: 'src/reconciler/', allow: WORKER_THREAD_ALLOW },
  { from: 'src/executor/', allow: ['src/taskstream/', 'src/storage/', 'src/internal/', 'proto/'] },
  // The lifecycle sees the executor only through the thread contract.
  {
    from: 'src/lifecycle/',
    allow: ['src/chain/', 'src/store/', 'src/txmgr/', 'src/config/', 'src/internal/', 'src/executor/messages.ts'],
  },
  { from: 'src/', deny: ['test/', 'scripts/', 'examples/'] },
  { from: 'scripts/', deny: ['test/'] },
  // The dev subnet-api shares the storage rules (signing, entitlement, wire) with wcp, nothing of the daemon.
  { from: 'scripts/lib/subnet-api/', allow: ['src/storage/', 'src/chain/', 'src/internal/'] },
  { from: 'examples/', allow: ['src/wep/', 'src/taskstream/', 'src/internal/'] },
];

/**
 * Edges the folder rules would refuse but the design wants (`file → target`, exact): each component's options
 * compiler reads the config's type — the one step that turns the config into typed options
 * (`src/supervisor/options.ts` calls them all). Nothing else in those folders may see the config.
 */
const PERMITTED_EDGES: ReadonlyArray<readonly [file: string, target: string]> = [
  ['src/chain/options.ts', 'src/config/load.ts'],
  ['src/poller/options.ts', 'src/config/load.ts'],
  ['src/reconciler/options.ts', 'src/config/load.ts'],
  ['src/txmgr/options.ts', 'src/config/load.ts'],
];

/** One relative import, resolved. */
interface Edge {
  file: string;
  target: string;
}

interface Violation extends Edge {
  rule: string;
}

const FROM_RE = /^[ \t]*(?:import|export)\b[^;'"]*?\bfrom\s*['"]([^'"]+)['"]/gm;
const SIDE_EFFECT_RE = /^[ \t]*import\s*['"]([^'"]+)['"]/gm;
const DYNAMIC_RE = /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g;

/** The relative imports of `source` (a file at repo path `file`), resolved to repo paths. */
function importsOf(file: string, source: string): Edge[] {
  const specs = new Set<string>();
  for (const re of [FROM_RE, SIDE_EFFECT_RE, DYNAMIC_RE]) {
    for (const m of source.matchAll(re)) if (m[1] !== undefined) specs.add(m[1]);
  }
  const edges: Edge[] = [];
  for (const spec of specs) {
    if (!spec.startsWith('.')) continue;
    edges.push({ file, target: posix.normalize(posix.join(posix.dirname(file), spec)) });
  }
  return edges;
}

function ruleName(r: Rule): string {
  if (r.allow !== undefined) return `${r.from} may import only ${[r.from, ...r.allow].join(', ')}`;
  return `${r.from} must not import ${r.deny?.join(', ')}${r.except ? ` except ${r.except.join(', ')}` : ''}`;
}

const under = (path: string, prefix: string): boolean =>
  prefix.endsWith('/') ? path.startsWith(prefix) : path === prefix;

/** Every rule each edge breaks. */
function check(edges: Edge[], rules: Rule[] = RULES): Violation[] {
  const out: Violation[] = [];
  for (const e of edges) {
    for (const r of rules) {
      if (!under(e.file, r.from)) continue;
      const broken =
        r.allow !== undefined
          ? !under(e.target, r.from) && !r.allow.some((p) => under(e.target, p))
          : (r.deny ?? []).some((p) => under(e.target, p)) && !(r.except ?? []).some((p) => under(e.target, p));
      if (broken) out.push({ ...e, rule: ruleName(r) });
    }
  }
  return out;
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...tsFiles(path));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

function repoEdges(): { files: number; edges: Edge[] } {
  const files = SCANNED.flatMap((d) => tsFiles(join(ROOT, d)));
  const edges = files.flatMap((abs) => importsOf(relative(ROOT, abs).split(sep).join('/'), readFileSync(abs, 'utf8')));
  return { files: files.length, edges };
}

/** The import cycles among `edges` (strongly connected sets of more than one file, or a file importing itself). */
function cycles(edges: Edge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.file, [...(next.get(e.file) ?? []), e.target]);
  // Tarjan's strongly connected components.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v) as number);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string | undefined;
    do {
      w = stack.pop() as string;
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1 || (next.get(v) ?? []).includes(v)) out.push(scc.sort());
  };
  for (const v of next.keys()) if (!index.has(v)) visit(v);
  return out;
}

const show = (v: Violation): string => `${v.file} → ${v.target} (${v.rule})`;
const isKnown = (v: Edge): boolean => PERMITTED_EDGES.some(([f, t]) => f === v.file && t === v.target);

describe('layering', () => {
  test('no import crosses a forbidden direction', () => {
    const { files, edges } = repoEdges();
    // A walker or parser that finds nothing would pass vacuously.
    expect(files).toBeGreaterThan(100);
    expect(edges).toContainEqual({ file: 'src/wep/executor.ts', target: 'src/taskstream/protocol.ts' });
    const violations = check(edges);
    const stale = PERMITTED_EDGES.filter(([f, t]) => !violations.some((v) => v.file === f && v.target === t));
    if (stale.length > 0)
      console.warn(`PERMITTED_EDGES no longer needed:\n${stale.map(([f, t]) => `  ${f} → ${t}`).join('\n')}`);
    const unexpected = violations.filter((v) => !isKnown(v)).map(show);
    if (unexpected.length > 0) console.error(`Forbidden imports:\n${unexpected.map((s) => `  ${s}`).join('\n')}`);
    expect(unexpected).toEqual([]);
  });

  test('no import cycle anywhere in src/', () => {
    const { edges } = repoEdges();
    const found = cycles(edges.filter((e) => e.file.startsWith('src/') && e.target.startsWith('src/')));
    if (found.length > 0) console.error(`Import cycles:\n${found.map((c) => `  ${c.join(' ↔ ')}`).join('\n')}`);
    expect(found).toEqual([]);
  });

  test('self-check: a synthetic import cycle is reported', () => {
    const edges = [
      ...importsOf('src/a/x.ts', "import { y } from './y.ts';"),
      ...importsOf('src/a/y.ts', "import type { Z } from '../b/z.ts';"),
      ...importsOf('src/b/z.ts', "import { x } from '../a/x.ts';"),
      ...importsOf('src/b/w.ts', "import { x } from '../a/x.ts';"),
    ];
    expect(cycles(edges)).toEqual([['src/a/x.ts', 'src/a/y.ts', 'src/b/z.ts']]);
  });

  test('self-check: a synthetic forbidden import is reported, exactly once', () => {
    const forbidden = importsOf('src/wep/x.ts', "import { createExecutorBridge } from '../executor/bridge.ts';");
    expect(check(forbidden).map(show)).toEqual([
      'src/wep/x.ts → src/executor/bridge.ts (src/wep/ may import only src/wep/, src/taskstream/, src/internal/)',
    ]);
    // Multi-line, type-only, re-export and dynamic forms are all seen; allowed and package imports are not reported.
    const forms = importsOf(
      'src/lifecycle/x.ts',
      [
        'import {\n  type A,\n  b,\n} from "../reconciler/scanner.ts";',
        "export type { C } from '../executor/bridge.ts';",
        "const d = await import('../poller/poller.ts');",
        "import '../supervisor/side-effect.ts';",
        "import type { TaskSpec } from '../executor/messages.ts';",
        "import { x } from '../chain/reads.ts';",
        "import { Server } from '@grpc/grpc-js';",
      ].join('\n'),
    );
    expect(
      check(forms)
        .map((v) => v.target)
        .sort(),
    ).toEqual([
      'src/executor/bridge.ts',
      'src/poller/poller.ts',
      'src/reconciler/scanner.ts',
      'src/supervisor/side-effect.ts',
    ]);
    // One direction between test/ and scripts/: tests may use the scripts, never the other way round.
    const testEdges = importsOf('test/t.ts', "import { a } from '../scripts/lib/anvil.ts';");
    const scriptEdges = importsOf('scripts/bench/x.ts', "import { b } from '../../test/support/wcp.ts';");
    expect(check([...testEdges, ...scriptEdges]).map((v) => v.target)).toEqual(['test/support/wcp.ts']);
  });
});
