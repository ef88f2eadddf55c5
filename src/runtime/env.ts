/**
 * What the process is running on: which JS runtime, whether it is the compiled `wcp` binary, which build, and the
 * checks the binary needs before it touches native code. The only runtime-specific module besides `workers.ts`;
 * the rest of `src/` asks here instead of probing `Bun`, `Deno` or `/$bunfs` itself.
 *
 * Build-time constants (set by `scripts/build.ts` through `define`; absent when running from source):
 * - `WCP_VERSION`: `<package.json version>+<git short hash>` (e.g. `0.1.0+1a2b3c4`, `+dirty` when uncommitted).
 * - `WCP_COMPILED`: `true` inside the binary.
 * - `WCP_WORKER_ENTRY`: the pool worker's path inside the binary, relative to its virtual root
 *   (e.g. `src/supervisor/worker-entry.js`); read through `embeddedWorkerEntry()`.
 * - `WCP_BUNDLED_WORKER`: in the Node bundle (`scripts/build-node.ts`), the pool worker's file relative to the
 *   bundled main module (e.g. `./supervisor/worker-entry.js`); read through `bundledWorkerFile()`.
 * - `WCP_COMMIT`, `WCP_TARGET`, `WCP_BUILD_DATE`: the full commit hash, the Bun compile target
 *   (`bun-linux-arm64`) and the commit's date (not the wall clock, so rebuilds are byte-identical); read through
 *   `buildInfo()`.
 */
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WcpError } from '../internal/errors.ts';

declare const WCP_VERSION: string;
declare const WCP_COMPILED: boolean;
declare const WCP_WORKER_ENTRY: string;
declare const WCP_BUNDLED_WORKER: string;
declare const WCP_COMMIT: string;
declare const WCP_TARGET: string;
declare const WCP_BUILD_DATE: string;

export type RuntimeName = 'bun' | 'node' | 'deno';

/** The runtime executing this code. Deno exposes `process.versions.node` too, so it is checked first. */
export function runtimeName(): RuntimeName {
  if (typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined') return 'deno';
  if (typeof process !== 'undefined' && typeof process.versions?.bun === 'string') return 'bun';
  return 'node';
}

/**
 * True inside the executable built by `scripts/build.ts` (`bun build --compile`). Trusts the build-time constant
 * first, then Bun's own flag, then the virtual filesystem prefix Bun gives embedded modules.
 */
export function isCompiledBinary(): boolean {
  if (typeof WCP_COMPILED === 'boolean') return WCP_COMPILED;
  if (runtimeName() !== 'bun') return false;
  const bun = (globalThis as { Bun?: { isStandaloneExecutable?: boolean } }).Bun;
  if (typeof bun?.isStandaloneExecutable === 'boolean') return bun.isStandaloneExecutable;
  return import.meta.url.includes('/$bunfs/') || import.meta.url.includes('~BUN');
}

/** The build's version string; `dev` when running from the source tree. */
export function buildVersion(): string {
  return typeof WCP_VERSION === 'string' ? WCP_VERSION : 'dev';
}

/** The running runtime's own version (`1.4.5` for Bun, `2.9.6` for Deno; Deno also reports a Node version). */
export function runtimeVersion(): string {
  const v = process.versions as Record<string, string | undefined>;
  return v.deno ?? v.bun ?? v.node ?? 'unknown';
}

/** What `wcp version` prints. Fields a build did not record read `unknown` (`source` for the target from source). */
export interface BuildInfo {
  version: string;
  commit: string;
  /** The compile target of the binary (`bun-linux-x64`), else `source` or `node-bundle`. */
  target: string;
  buildDate: string;
  runtime: RuntimeName;
  runtimeVersion: string;
  /** `<platform>-<arch>` of the running process. */
  platform: string;
}

/** Version, commit, target and build date of this build, and the runtime it runs on. */
export function buildInfo(): BuildInfo {
  const bundled = typeof WCP_BUNDLED_WORKER === 'string' && WCP_BUNDLED_WORKER !== '';
  return {
    version: buildVersion(),
    commit: typeof WCP_COMMIT === 'string' ? WCP_COMMIT : 'unknown',
    target: typeof WCP_TARGET === 'string' ? WCP_TARGET : bundled ? 'node-bundle' : 'source',
    buildDate: typeof WCP_BUILD_DATE === 'string' ? WCP_BUILD_DATE : 'unknown',
    runtime: runtimeName(),
    runtimeVersion: runtimeVersion(),
    platform: `${process.platform}-${process.arch}`,
  };
}

/**
 * Root of the binary's embedded files. Bun gives every module bundled into a `--compile` executable a path under
 * this virtual root (`/$bunfs/root/<path relative to the build root>.js`; the main entry is named after the binary).
 */
export function embeddedRoot(): string {
  return process.platform === 'win32' ? 'B:/~BUN/root' : '/$bunfs/root';
}

/**
 * Absolute path of the pool worker inside the binary, or `undefined` when not compiled (or when the build embedded
 * no worker). `scripts/build.ts` adds the worker as an extra entrypoint and records its path here.
 */
export function embeddedWorkerEntry(): string | undefined {
  if (typeof WCP_WORKER_ENTRY !== 'string' || WCP_WORKER_ENTRY === '') return undefined;
  return `${embeddedRoot()}/${WCP_WORKER_ENTRY}`;
}

/**
 * The pool worker's `file:` URL in a plain-JS bundle (the Node build), or `undefined` when not bundled. The bundle
 * puts this module inside the main file, so `import.meta.url` here is the main module's URL.
 */
export function bundledWorkerFile(): string | undefined {
  if (typeof WCP_BUNDLED_WORKER !== 'string' || WCP_BUNDLED_WORKER === '') return undefined;
  return new URL(WCP_BUNDLED_WORKER, import.meta.url).href;
}

/** Outcome of `checkTmpdir()`. */
export type TmpdirCheck = { ok: true; dir: string } | { ok: false; dir: string; reason: string };

/**
 * Whether the temp directory (`$TMPDIR`, else `/tmp`) accepts a new file. The compiled binary needs this: Bun
 * writes each embedded native addon (lmdb's `.node`) there once and `dlopen`s it from there.
 */
export function checkTmpdir(): TmpdirCheck {
  const dir = tmpdir();
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
    const probe = mkdtempSync(join(dir, 'wcp-probe-'));
    try {
      writeFileSync(join(probe, 'x'), '');
    } finally {
      rmSync(probe, { recursive: true, force: true });
    }
    return { ok: true, dir };
  } catch (error) {
    return { ok: false, dir, reason: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * Throws a `WcpError` naming the temp directory and the fix when the compiled binary could not extract its native
 * addons. A no-op outside the binary (addons then load straight from node_modules) and when the directory is fine.
 */
export function ensureWritableTmpdir(): void {
  if (!isCompiledBinary()) return;
  const check = checkTmpdir();
  if (check.ok) return;
  throw tmpdirError(check.dir, check.reason);
}

/**
 * Wraps a failure to load a native addon (called by the loader `scripts/build.ts` substitutes into lmdb) in an
 * error that says why it most likely happened inside the binary. Returns the error for the caller to throw.
 */
export function nativeAddonError(addon: string, cause: unknown): Error {
  const check = checkTmpdir();
  if (!check.ok) return tmpdirError(check.dir, check.reason, addon, cause);
  return new WcpError('STORE_OPEN_FAILED', `Could not load the native addon of ${addon}.`, {
    details: [
      `runtime: ${runtimeName()} ${process.version}, ${process.platform}-${process.arch}, compiled: ${isCompiledBinary()}`,
      `cause: ${cause instanceof Error ? cause.message : String(cause)}`,
      `This binary embeds the addon built for ${buildInfo().target}; another libc or CPU needs the matching release ` +
        '(glibc builds need glibc >= 2.34 and libstdc++ with GLIBCXX_3.4.29).',
    ],
    cause,
  });
}

function tmpdirError(dir: string, reason: string, addon = 'lmdb', cause?: unknown): WcpError {
  return new WcpError('STORE_OPEN_FAILED', `The temp directory ${dir} is not writable.`, {
    details: [
      `The wcp binary unpacks the native addon of ${addon} into the temp directory before loading it.`,
      `error: ${reason}`,
      'Set TMPDIR to a writable directory on a filesystem that allows executing files (not mounted noexec).',
    ],
    cause,
  });
}
