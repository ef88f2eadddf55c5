/**
 * `npm run release`: the release binaries of the checked-out commit, built on this machine from the npm registry
 * only, with checksums and smoke tests.
 *
 *   bun scripts/release.ts [--targets linux-x64,linux-arm64,darwin-arm64] [--no-smoke] [--out dist/release]
 *   bun scripts/release.ts --smoke-only [--out dist/release]     (smoke-test binaries already in --out)
 *
 * Output: `<out>/wcp-<version>-<os>-<arch>` per target and `<out>/SHA256SUMS` (`sha256sum -c SHA256SUMS`).
 * Steps: the commit (HEAD; uncommitted changes are not released) is unpacked at a fixed path with its production
 * dependencies (scripts/release/stage.ts), each target is compiled there with its own Bun runtime and native
 * addons from npm, darwin binaries are kept only when their code signature verifies (scripts/release/macho.ts),
 * then each binary this machine can run is smoke-tested (scripts/release/run-targets.ts). Exits 1 when a build,
 * a signature or a smoke test fails; targets it could not run are listed with the reason.
 *
 * darwin-x64 is not a default target: Bun 1.4.5 leaves its own code signature over pages it changed, so macOS
 * would refuse the binary, and no registry offers a tool to re-sign it here (docs/releases.md).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, createReadStream, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, relative, resolve } from 'node:path';
import { verifyMachOSignature } from './release/macho.ts';
import { smokeTest } from './release/run-targets.ts';
import {
  fetchAddons,
  fetchRuntime,
  headOf,
  lockedVersions,
  STAGE,
  stageSource,
  TARGETS,
  type Target,
} from './release/stage.ts';

const ROOT = resolve(import.meta.dir, '..');
const DEFAULT_TARGETS = ['linux-x64', 'linux-arm64', 'darwin-arm64'];
const say = (m: string) => process.stderr.write(`[release] ${m}\n`);

interface Args {
  targets: Target[];
  smoke: boolean;
  smokeOnly: boolean;
  out: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { targets: [], smoke: true, smokeOnly: false, out: join(ROOT, 'dist', 'release') };
  let names = DEFAULT_TARGETS;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--no-smoke') a.smoke = false;
    else if (arg === '--smoke-only') a.smokeOnly = true;
    else if (arg === '--out') a.out = resolve(argv[++i] ?? '');
    else if (arg === '--targets') names = (argv[++i] ?? '').split(',').filter(Boolean);
    else throw new Error(`unknown argument ${arg} (see the header of scripts/release.ts)`);
  }
  a.targets = names.map((n) => {
    const t = TARGETS.find((x) => x.name === n);
    if (t === undefined) throw new Error(`unknown target ${n}; known: ${TARGETS.map((x) => x.name).join(', ')}`);
    return t;
  });
  return a;
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Compiles `t` in STAGE and returns the binary's path there, or throws. */
function buildTarget(
  t: Target,
  file: string,
  commit: { hash: string; date: string },
  bunVersion: string,
  addonVersions: Record<string, string>,
): string {
  const runtime = fetchRuntime(t, bunVersion);
  const addons = fetchAddons(t, addonVersions);
  const outDir = join(STAGE, '.release', 'out');
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, file);
  const args = [
    'scripts/build.ts',
    '--target',
    t.bun,
    '--out',
    out,
    '--executable-path',
    runtime,
    '--addons-from',
    addons,
    '--commit',
    commit.hash,
    '--build-date',
    commit.date,
  ];
  // The staged copy's own build script, run from the staged copy: its root, and so every embedded path, is STAGE.
  execFileSync(process.execPath, args, { cwd: STAGE, stdio: ['ignore', 'inherit', 'inherit'] });
  return out;
}

async function main(): Promise<number> {
  const a = parseArgs(process.argv.slice(2));
  const head = headOf(ROOT);
  const { version } = (await Bun.file(join(ROOT, 'package.json')).json()) as { version: string };
  const built: Array<[Target, string]> = [];
  let failed = false;

  if (a.smokeOnly) {
    for (const t of TARGETS) {
      const f = join(a.out, `wcp-${version}-${t.name}`);
      if (existsSync(f)) built.push([t, f]);
    }
    if (built.length === 0) throw new Error(`no wcp-${version}-* binaries in ${a.out}`);
  } else {
    if (head.dirty) say('the work tree has uncommitted changes: they are NOT in the release (it builds HEAD)');
    const bunVersion = lockedVersions(ROOT, ['bun']).bun as string;
    const addonVersions = lockedVersions(ROOT, ['lmdb', 'msgpackr-extract']);
    say(
      `wcp ${version} at ${head.hash.slice(0, 12)} (${head.date}); bun ${bunVersion}; targets ${a.targets.map((t) => t.name).join(', ')}`,
    );
    stageSource(ROOT, head.hash, say);
    rmSync(a.out, { recursive: true, force: true });
    mkdirSync(a.out, { recursive: true });
    for (const t of a.targets) {
      const file = `wcp-${version}-${t.name}`;
      try {
        const staged = buildTarget(t, file, head, bunVersion, addonVersions);
        if (t.os === 'darwin') {
          const sig = verifyMachOSignature(staged);
          if (!sig.ok) throw new Error(`its code signature is invalid (${sig.reason}); macOS would refuse to run it`);
          say(`${t.name}: code signature verifies (${sig.pages} page hashes)`);
        }
        copyFileSync(staged, join(a.out, file));
        built.push([t, join(a.out, file)]);
      } catch (error) {
        failed = true;
        say(`${t.name}: FAILED: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    const sums: string[] = [];
    for (const f of readdirSync(a.out)
      .filter((n) => n.startsWith('wcp-'))
      .sort())
      sums.push(`${await sha256(join(a.out, f))}  ${f}`);
    writeFileSync(join(a.out, 'SHA256SUMS'), `${sums.join('\n')}\n`);
    for (const s of sums) say(s);
  }

  if (a.smoke && built.length > 0) {
    say('smoke tests (version, config check, a short run on a local anvil)');
    for (const r of await smokeTest(built, head.hash)) {
      if (r.ok) say(`smoke ${r.target}: ok: ${r.detail}`);
      else if (r.skipped) say(`smoke ${r.target}: NOT RUN: ${r.detail}`);
      else {
        failed = true;
        say(`smoke ${r.target}: FAILED: ${r.detail}`);
      }
    }
  }
  say(`${failed ? 'FAILED' : 'done'}: ${built.map(([, f]) => relative(process.cwd(), f)).join(', ')}`);
  return failed ? 1 : 0;
}

try {
  process.exit(await main());
} catch (error) {
  say(error instanceof Error ? error.message : String(error));
  process.exit(1);
}
