/**
 * The inputs of a release build, gathered from the npm registry only: a copy of the commit at a fixed path, its
 * production dependencies installed from the lockfile, and per target Bun's runtime and the native addons.
 *
 * Why a fixed path: Bun writes absolute build-machine paths into a compiled binary (grpc-js's and Piscina's
 * `__dirname`, the source map's module paths), and it resolves a symlinked `node_modules` to its real path, so the
 * only way to keep the checkout path out of the bytes is to build from real files under one path on every machine.
 * Two releases on one machine at once would share it: the release script is meant to run one at a time.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where the commit is unpacked and built. Fixed, so every checkout produces the same bytes. */
export const STAGE = '/tmp/wcp-release-src';

/** One release target: Bun's compile target and the npm names of its runtime and addon platform. */
export interface Target {
  /** `linux-x64`: the suffix of the release file name. */
  name: string;
  /** Bun compile target, e.g. `bun-linux-arm64`. */
  bun: string;
  /** npm package of Bun's runtime for it, e.g. `@oven/bun-linux-aarch64`. */
  runtimePackage: string;
  os: 'linux' | 'darwin';
  cpu: 'x64' | 'arm64';
}

/** Every target the release knows; which ones are built is decided in scripts/release.ts. */
export const TARGETS: readonly Target[] = [
  { name: 'linux-x64', bun: 'bun-linux-x64', runtimePackage: '@oven/bun-linux-x64', os: 'linux', cpu: 'x64' },
  { name: 'linux-arm64', bun: 'bun-linux-arm64', runtimePackage: '@oven/bun-linux-aarch64', os: 'linux', cpu: 'arm64' },
  {
    name: 'darwin-arm64',
    bun: 'bun-darwin-arm64',
    runtimePackage: '@oven/bun-darwin-aarch64',
    os: 'darwin',
    cpu: 'arm64',
  },
  { name: 'darwin-x64', bun: 'bun-darwin-x64', runtimePackage: '@oven/bun-darwin-x64', os: 'darwin', cpu: 'x64' },
];

/** The commit being released: full hash and committer date (the build date, so rebuilds match). */
export interface Commit {
  hash: string;
  date: string;
}

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
}

/** HEAD of the checkout at `root`, and whether its work tree has uncommitted changes (they are not released). */
export function headOf(root: string): Commit & { dirty: boolean } {
  const [hash = '', date = ''] = run('git', ['log', '-1', '--format=%H %cI', 'HEAD'], root).trim().split(' ');
  const dirty = run('git', ['status', '--porcelain', '--untracked-files=no'], root).trim() !== '';
  return { hash, date, dirty };
}

/** Exact versions the lockfile pins (`node_modules/<name>` entries), so every target gets the same releases. */
export function lockedVersions(root: string, names: string[]): Record<string, string> {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version?: string }>;
  };
  const out: Record<string, string> = {};
  for (const n of names) {
    const v = lock.packages[`node_modules/${n}`]?.version;
    if (v === undefined) throw new Error(`package-lock.json pins no version of ${n}`);
    out[n] = v;
  }
  return out;
}

/**
 * Unpacks `commit` of the checkout at `root` into STAGE (`git archive`: committed files only) and installs its
 * production dependencies there with `npm ci` (exactly the lockfile; install scripts off, the build needs none).
 */
export function stageSource(root: string, commit: string, log: (m: string) => void): void {
  rmSync(STAGE, { recursive: true, force: true });
  mkdirSync(STAGE, { recursive: true });
  const tar = spawnSync('sh', ['-c', `git archive ${commit} | tar -x -C ${STAGE}`], { cwd: root, stdio: 'inherit' });
  if (tar.status !== 0) throw new Error(`git archive ${commit} failed`);
  log(`staged ${commit.slice(0, 12)} in ${STAGE}; npm ci --omit=dev`);
  run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], STAGE);
}

/**
 * Bun's runtime for `t`, from npm (`npm pack <runtimePackage>@<version>`): Bun's own cross-target download goes to
 * Bun's server, which a registry-only build machine cannot reach. Returns the executable's path.
 */
export function fetchRuntime(t: Target, bunVersion: string): string {
  const dir = join(STAGE, '.release', 'runtimes', t.name);
  const bin = join(dir, 'package', 'bin', 'bun');
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const tgz =
    run('npm', ['pack', `${t.runtimePackage}@${bunVersion}`, '--pack-destination', dir, '--silent'], dir)
      .trim()
      .split('\n')
      .pop() ?? '';
  run('tar', ['-xzf', join(dir, tgz), '-C', dir], dir);
  if (!existsSync(bin)) throw new Error(`${t.runtimePackage}@${bunVersion} holds no bin/bun`);
  chmodSync(bin, 0o755);
  return bin;
}

/**
 * A directory whose node_modules holds lmdb and msgpackr-extract with `t`'s platform packages. Installed apart
 * from the project: `npm install --os/--cpu` in the project would swap every platform package (Bun's own too),
 * and a foreign platform package alone fails with EBADPLATFORM.
 */
export function fetchAddons(t: Target, versions: Record<string, string>): string {
  const dir = join(STAGE, '.release', 'addons', t.name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{ "private": true }\n');
  const libc = t.os === 'linux' ? ['--libc=glibc'] : [];
  const specs = Object.entries(versions).map(([n, v]) => `${n}@${v}`);
  run(
    'npm',
    [
      'install',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--no-package-lock',
      `--os=${t.os}`,
      `--cpu=${t.cpu}`,
      ...libc,
      ...specs,
    ],
    dir,
  );
  const scopes = ['@lmdb', '@msgpackr-extract'].map((s) => readdirSync(join(dir, 'node_modules', s)));
  if (!scopes.every((names) => names.some((n) => n.endsWith(`-${t.os}-${t.cpu}`)))) {
    throw new Error(`npm installed no ${t.os}-${t.cpu} addon packages in ${dir}`);
  }
  return dir;
}
