/**
 * Shared pieces of `npm run bench`: the figure type every group returns, percentiles, a clock, progress lines
 * (stderr, so `--json` stdout stays one figure per line) and the settings the compiled binary runs with.
 */
import type { Interface } from 'ethers';
import { decodeExecute } from '../../src/chain/batch-executor.ts';
import { loadConfig, type WcpConfig } from '../../src/config/load.ts';
import { createLogger, type Logger } from '../../src/internal/logger.ts';
import { type WcpEnvOptions, wcpEnv } from '../lib/wcp-env.ts';
import { ROOT } from '../lib/wcp-process.ts';

/**
 * One measured figure. `reference` is the figure it is compared with, measured in the same run (or how it was
 * derived from one); `target` is what issue 12 asks of it; `notes` says how it was measured (JSON: `note`).
 */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  reference?: string | number;
  target?: string;
  /** How it was measured and what limits it. */
  notes?: string;
}

export interface BenchContext {
  /** Progress line on stderr. */
  log(line: string): void;
  /** A logger for project modules that must stay quiet (errors only, to stderr). */
  quietLogger(tag: string): Logger;
  /** Length of the e2e group's slow memory soak in minutes (`--soak-minutes`, default 10). */
  soakMinutes: number;
  /** Completions the `soak` group runs (`--soak-activities`, default 100,000). */
  soakActivities: number;
}

export interface BenchGroup {
  name: string;
  /** The issue the figures come from. */
  issue: number;
  run(ctx: BenchContext): Promise<Figure[]>;
}

/** Wall clock in ms with sub-ms resolution (performance.now is monotonic; add the origin for cross-process). */
export const nowMs = (): number => performance.timeOrigin + performance.now();

/** Nearest-rank percentile (p in 0..100) of unsorted samples; NaN when empty. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const s = [...samples].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1] as number;
}

export const median = (samples: readonly number[]): number => percentile(samples, 50);

export function round(v: number, digits = 2): number {
  if (!Number.isFinite(v)) return v;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** VmRSS split into RssAnon (heaps), RssFile (mapped files: the binary) and RssShmem, MB, plus the thread count. */
export async function rssParts(pid: number): Promise<string> {
  const text = await Bun.file(`/proc/${pid}/status`).text();
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(text)?.[1] ?? Number.NaN);
  const mb = (k: string) => round(kb(k) / 1024, 1);
  return `RssAnon ${mb('RssAnon')} MB, RssFile ${mb('RssFile')} MB, RssShmem ${mb('RssShmem')} MB, ${kb('Threads')} threads`;
}

/** VmRSS and its RssAnon (heaps, malloc) and RssFile (mapped files: the binary, the store's map) parts, MB. */
export async function rssSplitMb(pid: number): Promise<{ rss: number; anon: number; file: number }> {
  const text = await Bun.file(`/proc/${pid}/status`).text();
  const mb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(text)?.[1] ?? Number.NaN) / 1024;
  return { rss: mb('VmRSS'), anon: mb('RssAnon'), file: mb('RssFile') };
}

/**
 * The low point of each whole `windowH`-long window of `[h, value]` samples (a last, partial window is left out),
 * at its window's middle: for memory, the samples nearest to what is retained (a sample taken just before a
 * collection holds garbage, one just after holds none; the lowest of a window is the latter).
 */
export function windowMinima(
  samples: ReadonlyArray<readonly [number, number]>,
  windowH: number,
): Array<[number, number]> {
  const from = samples[0]?.[0] ?? 0;
  const whole = Math.floor(((samples[samples.length - 1]?.[0] ?? from) - from) / windowH + 1e-9);
  const out = new Map<number, number>();
  for (const [h, v] of samples) {
    const k = Math.floor((h - from) / windowH);
    if (k < whole) out.set(k, Math.min(out.get(k) ?? Number.POSITIVE_INFINITY, v));
  }
  return [...out].map(([k, v]) => [from + (k + 0.5) * windowH, v]);
}

/** Least-squares slope of `ys` over `xs` (NaN with fewer than two points). */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = Math.min(xs.length, ys.length);
  if (n < 2) return Number.NaN;
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < n; i++) {
    sx += xs[i] as number;
    sy += ys[i] as number;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += ((xs[i] as number) - mx) * ((ys[i] as number) - my);
    den += ((xs[i] as number) - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

/** Resident set size of a process in MB from /proc/<pid>/status (VmRSS covers every thread of the process). */
export async function rssMb(pid: number): Promise<number> {
  const text = await Bun.file(`/proc/${pid}/status`).text();
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(text);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}

export function quietLogger(tag: string): Logger {
  return createLogger(tag, { level: 'error', json: true, write: (l) => process.stderr.write(`[${tag}] ${l}\n`) });
}

/**
 * anvil flags for benchmarks that mine thousands of blocks. anvil 1.7 slows down with chain length on its default
 * hardfork (Prague: the storage of the EIP-2935 block-hash history contract grows and is re-hashed on every block)
 * and with full state history (a snapshot of the state per block, kept in memory: the lane benchmark's anvil grew
 * to 12 GB and mined ever slower after a few thousand automined blocks). The project's contracts are compiled for
 * cancun; pruned history still keeps the last 512 states, so reads pinned to a recent block work.
 */
export const LONG_CHAIN_ANVIL_ARGS: readonly string[] = ['--hardfork', 'cancun', '--prune-history', '512'];

/** What every benchmark run of the binary adds to `wcpEnv` (scripts/lib/wcp-env.ts): info-level logs. */
export const BENCH_SETTINGS: Readonly<Record<string, string>> = { WCP_LOG_LEVEL: 'info' };

/**
 * The config `dist/wcp` would run with under `wcpEnv(o, BENCH_SETTINGS, …layers)` (configs/local.toml, then the
 * env), loaded in this process: groups that build the daemon's components themselves compile their options from it
 * the way the daemon does, so they run with the daemon's defaults.
 */
export function benchConfig(o: WcpEnvOptions, ...layers: Array<Record<string, string>>): WcpConfig {
  return loadConfig({ env: wcpEnv(o, BENCH_SETTINGS, ...layers), cwd: ROOT });
}

/** CPU seconds (user + system, every thread) a process has used, from /proc/<pid>/stat (clock ticks of 10 ms). */
export async function cpuSeconds(pid: number): Promise<number> {
  const text = await Bun.file(`/proc/${pid}/stat`).text();
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/**
 * The activity ids a raw transaction's calldata claims: a `claimActivities`/`claimActivity` call of its own, or the
 * claim calls inside a batch (the wallet's ERC-7821 `execute`, EIP-7702: the default path).
 */
export function claimedIds(tq: Interface, data: string): string[] {
  let calls: Array<{ data: string }>;
  try {
    calls = decodeExecute(data);
  } catch {
    calls = [{ data }];
  }
  const ids: string[] = [];
  for (const c of calls) {
    try {
      const d = tq.parseTransaction({ data: c.data });
      if (d?.name === 'claimActivities') ids.push(...(d.args[0] as bigint[]).map(String));
      else if (d?.name === 'claimActivity') ids.push(String(d.args[0]));
    } catch {
      // not a TaskQueue call
    }
  }
  return ids;
}
