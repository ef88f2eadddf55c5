/**
 * The names a config can be written with: the file's `section.key` names (read off the schema, so they can never
 * disagree with it), their `WCP__SECTION__KEY` environment forms, and the other `WCP_` variables wcp reads. Used to
 * refuse a misspelt name with the closest valid one.
 */
import { DEBUG_MEMORY_DIR_ENV, DEBUG_MEMORY_ENV } from '../internal/thread-stats.ts';
import { ConfigFileSchema } from './schema.ts';

/**
 * `WCP_` variables that are not config keys: the config's location, the log shortcuts, variables the test
 * and benchmark harnesses set for their own processes (harmless when inherited by wcp), the debug-only profiling
 * of worker threads (`src/runtime/thread-profile.ts`) and the debug memory hook (`src/internal/thread-stats.ts`):
 * off in production, not settings.
 */
export const KNOWN_DIRECT_ENV: ReadonlySet<string> = new Set([
  'WCP_CONFIG',
  'WCP_CONFIG_DIR',
  'WCP_LOG_LEVEL',
  'WCP_LOG_FORMAT',
  'WCP_BUNDLED_WORKER',
  'WCP_CRASH_SEED',
  'WCP_BENCH_LOG_DIR',
  'WCP_DEBUG_CPU_PROF_DIR',
  DEBUG_MEMORY_ENV,
  DEBUG_MEMORY_DIR_ENV,
]);

type SectionSchema = { wrapped: { entries: Record<string, unknown> } };

/** The keys of one file section, or undefined for an unknown section. */
export function sectionKeys(section: string): string[] | undefined {
  const s = (ConfigFileSchema.entries as Record<string, SectionSchema | undefined>)[section];
  return s ? Object.keys(s.wrapped.entries) : undefined;
}

/** Every `WCP__SECTION__KEY` variable name. */
export function envVarNames(): string[] {
  return Object.keys(ConfigFileSchema.entries).flatMap((sec) =>
    (sectionKeys(sec) ?? []).map((k) => `WCP__${sec}__${k}`.toUpperCase()),
  );
}

function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] as number;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j] as number;
      prev[j] = Math.min(up + 1, (prev[j - 1] as number) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length] as number;
}

/** The candidate closest to `name` (case-insensitive edit distance), when it is close enough to be a typo. */
export function closestName(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = distance(name.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}
