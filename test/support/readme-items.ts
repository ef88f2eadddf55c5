/**
 * Parsers for the README coverage guard (`test/readme-coverage.test.ts`): the CLI commands and flags, `WCP_`
 * variables, `ENVIRONMENT` and exit codes README.md names, and the rows of docs/cli-coverage.md. Deliberately plain
 * (one regex or split each) so a README edit cannot confuse them silently; unit-tested on strings in the guard.
 */

/** `exit N` for every code in README's "Exit codes:" paragraph (`· N meaning` items; bold markers ignored). */
export function readmeExitCodes(readme: string): string[] {
  const start = readme.indexOf('Exit codes:');
  if (start < 0) return [];
  const para = readme.slice(start + 'Exit codes:'.length).split(/\n\s*\n/)[0] ?? '';
  return para
    .replace(/\*\*/g, '')
    .split('·')
    .map((item) => /^\s*(\d+)\s/.exec(item)?.[1])
    .filter((n): n is string => n !== undefined)
    .map((n) => `exit ${n}`);
}

/** Every `WCP_…` variable name README.md mentions, plus `ENVIRONMENT` when it does; sorted, unique. */
export function readmeEnvVars(readme: string): string[] {
  const names = new Set(readme.match(/\bWCP_[A-Z0-9_]*[A-Z0-9]\b/g) ?? []);
  if (/\bENVIRONMENT\b/.test(readme)) names.add('ENVIRONMENT');
  return [...names].sort();
}

/**
 * The commands and flags of README's CLI block (the first fenced block after "## The CLI"): for each usage line
 * `wcp …`, each `|`-separated form up to its description (3+ spaces) gives its command (`wcp` and the lowercase
 * words after it) and `<command> --flag` for every flag on it.
 */
export function readmeCli(readme: string): string[] {
  const section = readme.slice(readme.indexOf('## The CLI'));
  const block = /```[^\n]*\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  const items = new Set<string>();
  for (const line of block.split('\n')) {
    if (!line.startsWith('wcp ')) continue;
    const usage = line.split(/ {3,}/)[0] ?? '';
    for (const form of usage.split(' | ')) {
      const words = form.trim().split(/\s+/);
      const cmd = ['wcp'];
      for (const w of words.slice(1)) {
        if (!/^[a-z]+$/.test(w)) break;
        cmd.push(w);
      }
      const name = cmd.join(' ');
      if (cmd.length > 1) items.add(name);
      for (const flag of form.match(/--[a-z][a-z-]*/g) ?? []) items.add(`${name} ${flag}`);
    }
  }
  return [...items];
}

/** A row of docs/cli-coverage.md: the backticked items of its first cell, the test file and test title. */
export interface CoverageRow {
  items: string[];
  file: string;
  title: string;
}

/** The table rows of the coverage document (header and separator rows skipped). */
export function coverageRows(doc: string): CoverageRow[] {
  const rows: CoverageRow[] = [];
  for (const line of doc.split('\n')) {
    if (!line.startsWith('|')) continue;
    const cells = line.split('|').map((c) => c.trim());
    const [, first = '', file = '', title = ''] = cells;
    if (!/\.test\.ts$/.test(file)) continue; // header or separator
    rows.push({ items: [...first.matchAll(/`([^`]+)`/g)].map((m) => m[1] as string), file, title });
  }
  return rows;
}

/**
 * What is wrong, as sentences: a README item without a row, or a row whose file is missing or whose title is not
 * in that file. `read` reads a repository file (the unit tests pass a fake).
 */
export function coverageProblems(readme: string, doc: string, read: (file: string) => string | undefined): string[] {
  const rows = coverageRows(doc);
  const covered = new Set(rows.flatMap((r) => r.items));
  const problems: string[] = [];
  const wanted = [...readmeCli(readme), ...readmeEnvVars(readme), ...readmeExitCodes(readme)];
  for (const item of wanted) if (!covered.has(item)) problems.push(`README names \`${item}\`: no row covers it`);
  for (const r of rows) {
    const text = read(r.file);
    if (text === undefined) problems.push(`${r.file}: no such file (row for ${r.items.join(', ')})`);
    else if (r.title === '' || !text.includes(r.title)) problems.push(`${r.file}: no test titled "${r.title}"`);
  }
  return problems;
}
