/**
 * Guard: every CLI command and flag, `WCP_` variable, `ENVIRONMENT` and exit code README.md names has a row in
 * docs/cli-coverage.md naming a test file and a test title that exist. A README item added without a covering test
 * fails here. The parsers are deliberately plain (one regex or split each) and are unit-tested on strings below.
 */
import { describe, expect, test } from 'bun:test';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { coverageProblems, readmeCli, readmeEnvVars, readmeExitCodes } from './support/readme-items.ts';

const ROOT = resolve(import.meta.dir, '..');

const README = `# x

## The CLI

\`\`\`
wcp run [--config FILE]                 run it (see --json elsewhere)
wcp db scan PREFIX [--json] [--limit N]
                                        list records --not-a-flag-of-scan
wcp version | wcp --version             version
wcp help [command] | wcp <command> --help
\`\`\`

Exit codes: 0 ok · 1 failure (also: \`status\`) · 3 bad config (3 kinds) · **10 not a
worker** · 130 forced.

Set \`WCP_CONFIG\`, \`WCP__SECTION__KEY\` or \`ENVIRONMENT\`; any other \`WCP_\` variable is refused.
`;

const DOC = `| item | test file | test name |
| --- | --- | --- |
| \`wcp run\`, \`wcp run --config\` | test/a.test.ts | runs |
| \`wcp db scan\`, \`wcp db scan --json\`, \`wcp db scan --limit\` | test/a.test.ts | scans |
| \`wcp version\`, \`wcp --version\`, \`wcp help\`, \`wcp --help\` | test/a.test.ts | runs |
| \`ENVIRONMENT\`, \`WCP_CONFIG\`, \`WCP__SECTION__KEY\` | test/a.test.ts | runs |
| \`exit 0\`, \`exit 1\`, \`exit 3\`, \`exit 10\`, \`exit 130\` | test/a.test.ts | scans |
`;
const FILES: Record<string, string> = { 'test/a.test.ts': "test('runs', …); test('scans', …)" };
const fake = (f: string) => FILES[f];

describe('README parsers (on strings)', () => {
  test('exit codes from the "Exit codes:" paragraph, bold and wrapped items included', () => {
    expect(readmeExitCodes(README)).toEqual(['exit 0', 'exit 1', 'exit 3', 'exit 10', 'exit 130']);
  });

  test('WCP_ variables and ENVIRONMENT; the bare prefix WCP_ is not a name', () => {
    expect(readmeEnvVars(README)).toEqual(['ENVIRONMENT', 'WCP_CONFIG', 'WCP__SECTION__KEY']);
  });

  test('commands and their flags from the usage lines only (not descriptions or continuation lines)', () => {
    expect(readmeCli(README).sort()).toEqual(
      [
        'wcp run',
        'wcp run --config',
        'wcp db scan',
        'wcp db scan --json',
        'wcp db scan --limit',
        'wcp version',
        'wcp --version',
        'wcp help',
        'wcp --help',
      ].sort(),
    );
  });

  test('a complete document passes; a fake README row of each kind fails naming it', () => {
    expect(coverageProblems(README, DOC, fake)).toEqual([]);
    const more = README.replace('· 130 forced.', '· 12 fake code · 130 forced.')
      .replace('`WCP_CONFIG`,', '`WCP_CONFIG`, `WCP_FAKE_VAR`,')
      .replace('wcp version |', 'wcp frob [--fast]\nwcp version |');
    expect(coverageProblems(more, DOC, fake)).toEqual([
      'README names `wcp frob`: no row covers it',
      'README names `wcp frob --fast`: no row covers it',
      'README names `WCP_FAKE_VAR`: no row covers it',
      'README names `exit 12`: no row covers it',
    ]);
  });

  test('a row citing a missing file or a title not in the file fails', () => {
    const bad = DOC.replace('| scans |', '| scans nothing |').replace(
      'test/a.test.ts | runs |',
      'test/b.test.ts | runs |',
    );
    expect(coverageProblems(README, bad, fake)).toEqual([
      'test/b.test.ts: no such file (row for wcp run, wcp run --config)',
      'test/a.test.ts: no test titled "scans nothing"',
    ]);
  });
});

describe('README.md against docs/cli-coverage.md', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const doc = readFileSync(join(ROOT, 'docs', 'cli-coverage.md'), 'utf8');

  test('the parsers find the README items (a format change that hides them fails here, not silently)', () => {
    expect(readmeExitCodes(readme).length).toBeGreaterThanOrEqual(10);
    expect(readmeEnvVars(readme)).toContain('WCP_LOG_FORMAT');
    expect(readmeCli(readme)).toContain('wcp db scan --limit');
  });

  test('every command, flag, variable and exit code README names has a row naming a real test', () => {
    const read = (f: string) => (existsSync(join(ROOT, f)) ? readFileSync(join(ROOT, f), 'utf8') : undefined);
    expect(coverageProblems(readme, doc, read)).toEqual([]);
  });
});
