/**
 * Builds the single `wcp` executable with `Bun.build({ compile })`.
 *
 *   bun scripts/build.ts [--entry src/main.ts] [--worker src/supervisor/worker-entry.ts] [--out dist/wcp]
 *                        [--target bun-linux-x64] [--no-minify] [--no-sourcemap] [--no-bytecode]
 *                        [--executable-path <target's bun>] [--addons-from <dir>] [--commit H] [--build-date ISO]
 *
 * `--entry`, `--worker` and `--out` exist so the glue can be proven on a small app (test/fixtures/probe). Every
 * workaround needed to make lmdb, Piscina and grpc-js run from one file lives here, each with the reason beside it;
 * the run-time half is `src/runtime/`.
 *
 * Layout inside the binary (Bun's virtual filesystem, `/$bunfs/root` on Linux): the build root is the repository,
 * so the main entry is `/$bunfs/root/<binary name>`, the pool worker `/$bunfs/root/<worker path>.js` (recorded in
 * the `WCP_WORKER_ENTRY` constant for `src/runtime/workers.ts`) and Piscina's thread bootstrap
 * `/$bunfs/root/src/runtime/piscina-worker.js` (a virtual file generated here).
 */
import type { BunPlugin } from 'bun';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';

const ROOT = resolve(import.meta.dir, '..');
/**
 * A virtual entrypoint (Bun.build `files`) that embeds Piscina's thread bootstrap. Virtual because Piscina's
 * `exports` map hides `piscina/dist/worker.js` from a bare import; the build imports the file by absolute path.
 */
const PISCINA_SHIM = join(ROOT, 'src/runtime/piscina-worker.js');
const RUNTIME_ENV = join(ROOT, 'src/runtime/env.ts');
/** Bun's virtual root for embedded modules on Linux and macOS (Windows would be `B:/~BUN/root`). */
const BUNFS_ROOT = '/$bunfs/root';

export interface BuildOptions {
  /** Main entry (the CLI). Default `src/main.ts`. Relative paths resolve against the current directory. */
  entry: string;
  /** The Piscina pool worker. Default `src/supervisor/worker-entry.ts`. */
  worker: string;
  /** Output path of the executable. Default `dist/wcp`. */
  out: string;
  /** Bun compile target. Default: this machine's OS/arch, glibc or musl as detected. */
  target: string;
  /** Minify whitespace and syntax (never identifiers). Default true. */
  minify: boolean;
  /** Embed a zstd-compressed source map so stack traces name source files and lines. Default true. */
  sourcemap: boolean;
  /**
   * Embed JavaScriptCore bytecode beside the source of every entrypoint (main and pool worker), so the binary and
   * each worker thread skip parsing at start. Default true; costs ~8 MB of file size.
   */
  bytecode: boolean;
  /**
   * The target's Bun runtime to embed (`--compile-executable-path`). Default: none, so Bun reuses itself for the
   * host target and downloads any other, which needs Bun's own server (scripts/release.ts passes npm's copy).
   */
  executablePath?: string;
  /**
   * A directory whose `node_modules` holds the target's native addon packages (`@lmdb/lmdb-<os>-<arch>`,
   * `@msgpackr-extract/msgpackr-extract-<os>-<arch>`), installed with `npm install --os --cpu`. Default: the project.
   */
  addonsFrom?: string;
  /** Full commit hash recorded in the binary; default `git rev-parse HEAD` of the build root (`unknown` outside git). */
  commit?: string;
  /** Build date recorded in the binary (ISO 8601); default the commit's timestamp, so a rebuild gives the same bytes. */
  buildDate?: string;
}

export interface BuildResult {
  out: string;
  bytes: number;
  version: string;
  target: string;
  workerEntry: string;
  commit: string;
  buildDate: string;
}

/**
 * The host's compile target. On x64 there is no baseline/modern choice to make any more: since Bun 1.3 the
 * `-baseline` and `-modern` suffixes resolve to the same runtime, which targets Nehalem (SSE4.2) and picks
 * AVX2/AVX-512 code paths at run time (bun-types docs/bundler/executables.mdx, "Supported targets"). So one
 * `bun-linux-x64` binary runs on old and new CPUs alike. Targeting the host also means Bun reuses its own
 * executable instead of downloading one, so the build works offline.
 */
export function hostTarget(): string {
  const arch = process.arch === 'arm64' ? 'arm64' : process.arch === 'x64' ? 'x64' : undefined;
  if (arch === undefined || (process.platform !== 'linux' && process.platform !== 'darwin')) {
    throw new Error(`Unsupported build host ${process.platform}-${process.arch}: wcp ships for linux x64/arm64.`);
  }
  const musl = process.platform === 'linux' && isMusl();
  return `bun-${process.platform}-${arch}${musl ? '-musl' : ''}`;
}

function isMusl(): boolean {
  const report = (process.report?.getReport?.() ?? {}) as { header?: { glibcVersionRuntime?: string } };
  if (report.header?.glibcVersionRuntime) return false;
  return existsSync(`/lib/ld-musl-${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}.so.1`);
}

/** Output of `git <args>` in the build root, or '' outside a work tree. */
function git(args: string[]): string {
  const r = Bun.spawnSync(['git', ...args], { cwd: ROOT, stderr: 'ignore' });
  return r.exitCode === 0 ? r.stdout.toString().trim() : '';
}

/** The build root's HEAD: full hash and committer date (ISO 8601), or `unknown` for both outside a work tree. */
export function headCommit(): { commit: string; date: string } {
  const [commit, date] = git(['log', '-1', '--format=%H %cI', 'HEAD']).split(' ');
  return { commit: commit || 'unknown', date: date || 'unknown' };
}

/**
 * `<package.json version>+<short hash>`, e.g. `0.1.0+1a2b3c4`; `+nogit` when the commit is unknown. `commit`
 * defaults to the build root's HEAD.
 */
export async function versionString(commit = headCommit().commit): Promise<string> {
  const pkg = (await Bun.file(join(ROOT, 'package.json')).json()) as { version?: string };
  return `${pkg.version ?? '0.0.0'}+${commit === 'unknown' ? 'nogit' : commit.slice(0, 7)}`;
}

/** Path of a source file inside the binary: relative to the build root, `.js` instead of `.ts`. */
function embeddedPath(file: string): string {
  const rel = relative(ROOT, file).split(sep).join('/');
  return `${rel.slice(0, rel.length - extname(rel).length)}.js`;
}

/**
 * Replaces `pattern` in a dependency's source and fails the build when it does not match exactly once, so an
 * upgrade that moves the code breaks the build instead of the binary.
 */
function patch(source: string, file: string, pattern: RegExp, replacement: string): string {
  const matches = source.match(new RegExp(pattern.source, `${pattern.flags.replace('g', '')}g`));
  if (matches?.length !== 1) {
    throw new Error(
      `build patch no longer applies to ${relative(ROOT, file)}: expected one match of ${pattern}, found ${matches?.length ?? 0}. ` +
        'The dependency changed; update the plugin in scripts/build.ts.',
    );
  }
  return source.replace(pattern, replacement);
}

/** piscina/dist/worker.js, found through the package's own package.json (its `exports` map hides the file). */
function piscinaWorkerFile(): string {
  const pkgJson = Bun.resolveSync('piscina/package.json', ROOT);
  const file = join(dirname(pkgJson), 'dist/worker.js');
  if (!existsSync(file)) throw new Error(`Piscina's worker bootstrap not found at ${file}`);
  return file;
}

/**
 * The target's N-API addon in `<pkgPrefix>-<os>-<arch>` (resolved from `from`), or undefined when that package is
 * not installed. On Linux the file is `node.napi.<glibc|musl>.node`; darwin packages hold one `node.napi*.node`
 * whose name varies (lmdb: `node.napi.node`, msgpackr-extract: `node.napi.glibc.node`), so it is found by listing.
 */
export function optionalAddonPath(target: string, pkgPrefix: string, from: string): string | undefined {
  const [, os, arch] = /^bun-(linux|darwin)-(x64|arm64)/.exec(target) ?? [];
  if (os === undefined || arch === undefined) throw new Error(`No native addon mapping for target ${target}`);
  let pkgJson: string;
  try {
    pkgJson = Bun.resolveSync(`${pkgPrefix}-${os}-${arch}/package.json`, dirname(from));
  } catch {
    return undefined;
  }
  const dir = dirname(pkgJson);
  if (os === 'linux') {
    const file = join(dir, `node.napi.${target.includes('musl') ? 'musl' : 'glibc'}.node`);
    return existsSync(file) ? file : undefined;
  }
  const napi = readdirSync(dir).filter((f) => f.startsWith('node.napi') && f.endsWith('.node'));
  if (napi.length > 1)
    throw new Error(`${dir} holds several N-API addons (${napi.join(', ')}); pick one in scripts/build.ts`);
  return napi[0] === undefined ? undefined : join(dir, napi[0]);
}

/** `<from>/node_modules/<pkg>/package.json`: where the target's addon packages are looked up from. */
function addonAnchor(from: string, pkg: string): string {
  return join(from, 'node_modules', pkg, 'package.json');
}

/** The lmdb addon for the target, e.g. `@lmdb/lmdb-linux-x64/node.napi.glibc.node`, resolved to a file. */
function lmdbAddonPath(target: string, from: string): string {
  const file = optionalAddonPath(target, '@lmdb/lmdb', addonAnchor(from, 'lmdb'));
  if (file === undefined)
    throw new Error(`lmdb's native addon for ${target} is not installed under ${from} (@lmdb/lmdb-<os>-<arch>)`);
  return file;
}

/**
 * The plugin that makes the dependencies work from `/$bunfs` with no node_modules next to the binary.
 */
function compileFixups(target: string, piscinaShim: string, addonsFrom: string): BunPlugin {
  const addon = lmdbAddonPath(target, addonsFrom);
  return {
    name: 'wcp-compile-fixups',
    setup(build) {
      // lmdb finds its addon at run time with node-gyp-build-optional-packages, which scans directories next to
      // `import.meta.url`; inside the binary that is /$bunfs/root and the scan fails ("No native build was
      // found"). Bun embeds a `.node` file only when it sees a static `require()` of it, so the dynamic loader is
      // replaced by one. At run time Bun writes the embedded addon to $TMPDIR and dlopens it there; the wrapper
      // turns a failure into an error that names TMPDIR (src/runtime/env.ts nativeAddonError).
      build.onLoad({ filter: /[\\/]node_modules[\\/]lmdb[\\/]native\.js$/ }, async (args) => {
        let src = await Bun.file(args.path).text();
        src = patch(src, args.path, /^import loadNAPI from 'node-gyp-build-optional-packages';$/m, '');
        src = patch(
          src,
          args.path,
          /loadNAPI\(dirName\)/,
          `(() => { try { return require(${JSON.stringify(addon)}); } catch (error) { throw __wcpNativeAddonError('lmdb', error); } })()`,
        );
        src = `import { nativeAddonError as __wcpNativeAddonError } from ${JSON.stringify(RUNTIME_ENV)};\n${src}`;
        return { contents: src, loader: 'js' };
      });

      // msgpackr (lmdb's value codec) optionally loads msgpackr-extract, whose index.js is
      // `require('node-gyp-build-optional-packages')(__dirname)` with `__dirname` frozen to the build machine's
      // path: the binary would use the native decoder where it was built (the path exists) and silently fall back
      // to plain JS everywhere else. Embed the addon the same way as lmdb's so every machine runs the same code;
      // if it is not installed, make the module fail on purpose so msgpackr takes its JS path everywhere.
      build.onLoad({ filter: /[\\/]node_modules[\\/]msgpackr-extract[\\/]index\.js$/ }, () => {
        const extract = optionalAddonPath(
          target,
          '@msgpackr-extract/msgpackr-extract',
          addonAnchor(addonsFrom, 'msgpackr-extract'),
        );
        const contents =
          extract === undefined
            ? `throw new Error('msgpackr-extract is not embedded in this build');\n`
            : `module.exports = require(${JSON.stringify(extract)});\n`;
        return { contents, loader: 'js' };
      });

      // lmdb reads its compression dictionary from `new URL('./dict/dict.txt', import.meta.url)`, a path that does
      // not exist in the binary. Only used with `compression: true`, but embed it so that option keeps working.
      build.onLoad({ filter: /[\\/]node_modules[\\/]lmdb[\\/]open\.js$/ }, async (args) => {
        let src = await Bun.file(args.path).text();
        const dict = join(dirname(args.path), 'dict/dict.txt');
        src = patch(
          src,
          args.path,
          /fs\.readFileSync\(\s*new URL\(\s*'\.\/dict\/dict\.txt',\s*import\.meta\.url\.replace\([^\n]*\),?\s*\),?\s*\)/,
          'fs.readFileSync(__wcpLmdbDict)',
        );
        src = `import __wcpLmdbDict from ${JSON.stringify(dict)} with { type: 'file' };\n${src}`;
        return { contents: src, loader: 'js' };
      });

      // `require('lmdb')` would load the rollup bundle dist/index.cjs, which carries its own copy of the loader.
      // Our code imports lmdb as ESM; make sure nothing pulls the CJS copy in unpatched.
      build.onLoad({ filter: /[\\/]node_modules[\\/]lmdb[\\/]dist[\\/]index\.cjs$/ }, (args) => {
        throw new Error(`${args.path} was bundled (someone require()d lmdb): import it as ESM instead.`);
      });

      // Left alone on purpose (their frozen build paths are only read on code paths wcp does not take):
      // grpc-js channelz/orca load their own protos from `${__dirname}/../../proto` only when those services are
      // registered; Piscina's worker tries `require('@napi-rs/nice')` only for `niceIncrement`, and catches.

      // Piscina starts each thread on `resolve(__dirname, 'worker.js')`. Bun freezes `__dirname` of bundled
      // CommonJS to the build machine's node_modules path, which does not exist where the binary runs. Point it at
      // PISCINA_SHIM, an extra entrypoint that embeds piscina/dist/worker.js.
      build.onLoad({ filter: /[\\/]node_modules[\\/]piscina[\\/]dist[\\/]index\.js$/ }, async (args) => {
        const src = await Bun.file(args.path).text();
        const contents = patch(
          src,
          args.path,
          /\(0, node_path_1\.resolve\)\(__dirname, 'worker\.js'\)/,
          JSON.stringify(`${BUNFS_ROOT}/${embeddedPath(piscinaShim)}`),
        );
        return { contents, loader: 'js' };
      });
    },
  };
}

/** Builds the executable. Throws with Bun's build log when the build fails. */
export async function build(opts: BuildOptions): Promise<BuildResult> {
  // Relative paths are taken from the current directory, like any CLI (`npm run build` runs from the repository).
  const entry = resolve(opts.entry);
  const worker = resolve(opts.worker);
  const out = resolve(opts.out);
  for (const [flag, file] of [
    ['--entry', entry],
    ['--worker', worker],
  ] as const) {
    if (!existsSync(file)) throw new Error(`${flag} ${file} does not exist`);
    // Embedded paths are relative to the build root; a file outside it would land at an unexpected path.
    const rel = relative(ROOT, file);
    if (rel.startsWith('..') || isAbsolute(rel)) throw new Error(`${flag} ${file} must be inside ${ROOT}`);
  }
  const head = opts.commit === undefined || opts.buildDate === undefined ? headCommit() : undefined;
  const commit = opts.commit ?? head?.commit ?? 'unknown';
  const buildDate = opts.buildDate ?? head?.date ?? 'unknown';
  const version = await versionString(commit);
  const workerEntry = embeddedPath(worker);
  // Written in a temp directory beside the target, under the final name (Bun embeds the output file name, so a
  // temp name would make two builds differ), then renamed over it: a concurrent build or a reader copying the
  // binary (parallel test files) never sees a half-written executable.
  mkdirSync(dirname(out), { recursive: true }); // a clean clone has no dist/ yet
  const tmpDir = mkdtempSync(join(dirname(out), '.building-'));
  const building = join(tmpDir, basename(out));

  const result = await Bun.build({
    entrypoints: [entry, worker, PISCINA_SHIM],
    files: { [PISCINA_SHIM]: `import ${JSON.stringify(piscinaWorkerFile())};\n` },
    // The root fixes every embedded path (see the header); without it Bun uses the entrypoints' common ancestor.
    root: ROOT,
    target: 'bun',
    // Parsing and compiling ~4 MB of bundled JavaScript was most of the ~250 ms between exec and the first log line
    // (and again in each worker thread); with bytecode the engine loads it precompiled: `wcp version` 0.49 → 0.30 s
    // on this box. ESM bytecode needs `compile` and an explicit format (the CLI's top-level await needs ESM).
    ...(opts.bytecode ? { bytecode: true, format: 'esm' as const } : {}),
    compile: {
      target: opts.target as Bun.Build.CompileTarget,
      outfile: building,
      ...(opts.executablePath === undefined ? {} : { executablePath: opts.executablePath }),
      // A daemon must not change behaviour with the directory it is started from: no implicit .env or bunfig.toml
      // from the cwd (config comes from the TOML file and WCP_* variables, read by src/config).
      autoloadDotenv: false,
      autoloadBunfig: false,
    },
    // Identifiers stay: minifying them saves little next to the ~100 MB runtime and makes stack traces unreadable.
    minify: opts.minify ? { whitespace: true, syntax: true, identifiers: false } : false,
    sourcemap: opts.sourcemap ? 'linked' : 'none',
    define: {
      WCP_VERSION: JSON.stringify(version),
      WCP_COMPILED: 'true',
      WCP_WORKER_ENTRY: JSON.stringify(workerEntry),
      WCP_COMMIT: JSON.stringify(commit),
      WCP_TARGET: JSON.stringify(opts.target),
      WCP_BUILD_DATE: JSON.stringify(buildDate),
    },
    plugins: [compileFixups(opts.target, PISCINA_SHIM, resolve(opts.addonsFrom ?? ROOT))],
    throw: false,
  });
  try {
    if (!result.success) {
      const log = result.logs.map((l) => String(l)).join('\n');
      throw new Error(`bun build --compile failed:\n${log}`);
    }
    if (!existsSync(building)) throw new Error(`build reported success but ${building} is missing`);
    // With any `sourcemap` setting Bun also writes the maps (`<out>.map`, `<worker>.js.map`, …) beside the binary;
    // they are deleted with tmpDir or here. The binary carries its own compressed copy and resolves stack traces
    // from it (checked: traces name src/…/file.ts:line with the .map files deleted), so the output stays one file.
    for (const o of result.outputs) if (o.kind === 'sourcemap' && o.path !== building) rmSync(o.path, { force: true });
    renameSync(building, out);
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
  return { out, bytes: statSync(out).size, version, target: opts.target, workerEntry, commit, buildDate };
}

function parseArgs(argv: string[]): BuildOptions {
  const opts: BuildOptions = {
    entry: join(ROOT, 'src/main.ts'),
    worker: join(ROOT, 'src/supervisor/worker-entry.ts'),
    out: join(ROOT, 'dist/wcp'),
    target: '',
    minify: true,
    sourcemap: true,
    bytecode: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const [flag, inline] = arg.includes('=')
      ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
      : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--entry':
        opts.entry = value();
        break;
      case '--worker':
        opts.worker = value();
        break;
      case '--out':
        opts.out = value();
        break;
      case '--target':
        opts.target = value();
        break;
      case '--no-minify':
        opts.minify = false;
        break;
      case '--no-sourcemap':
        opts.sourcemap = false;
        break;
      case '--no-bytecode':
        opts.bytecode = false;
        break;
      case '--executable-path':
        opts.executablePath = value();
        break;
      case '--addons-from':
        opts.addonsFrom = value();
        break;
      case '--commit':
        opts.commit = value();
        break;
      case '--build-date':
        opts.buildDate = value();
        break;
      case '-h':
      case '--help':
        console.log(
          'usage: bun scripts/build.ts [--entry F] [--worker F] [--out PATH] [--target T] [--no-minify] [--no-sourcemap] [--no-bytecode]\n' +
            '                            [--executable-path BUN] [--addons-from DIR] [--commit HASH] [--build-date ISO]',
        );
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${arg}`);
    }
  }
  if (opts.target === '') opts.target = hostTarget();
  return opts;
}

if (import.meta.main) {
  try {
    const started = performance.now();
    const r = await build(parseArgs(process.argv.slice(2)));
    const mb = (r.bytes / 1024 / 1024).toFixed(1);
    console.log(
      `built ${relative(process.cwd(), r.out) || r.out}: ${mb} MB (${r.bytes} bytes), ${r.target}, version ${r.version}, ` +
        `worker /$bunfs/root/${r.workerEntry}, ${Math.round(performance.now() - started)} ms`,
    );
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  }
}
