/**
 * Logging through consola: short sentences with structured snake_case fields. JSON lines when stdout is not a
 * terminal (or `WCP_LOG_FORMAT=json`), pretty otherwise. Every line passes through `redact()` (`redact.ts`): a
 * registered secret can never reach the output, even inside an error message, and URLs print as scheme://host:port/….
 */
import { createConsola, type ConsolaInstance, type LogObject } from 'consola';
import { keepProblem } from './log-ring.ts';
import { redact } from './redact.ts';

export { redact, registerSecret } from './redact.ts';

export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  child(tag: string): Logger;
}

function jsonSafe(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Error) return v.message;
  return v;
}

const LEVELS: Record<string, number> = { error: 0, warn: 1, info: 3, debug: 4 };

export interface LoggerOptions {
  level?: 'error' | 'warn' | 'info' | 'debug';
  json?: boolean;
  /** Where lines go (default: stderr for pretty, stdout for JSON). For tests. */
  write?: (line: string) => void;
  /** Clock of the repeat limiter. For tests. */
  now?: () => number;
}

/** Identical warnings and errors (same tag, message and fields but counters) print once per this window. */
export const REPEAT_WINDOW_MS = 60_000;
/**
 * Fields that change from one retry to the next without making the line news (retry counters and timings; not a
 * dispatch `attempt`, which is news).
 */
const VOLATILE_FIELDS = new Set(['consecutive', 'failures', 'retry_in_ms', 'duration_ms', 'elapsed_ms', 'age_ms']);
const MAX_KEYS = 2_000;

/**
 * Rate-limits identical warn/error lines: the first prints; repeats within `REPEAT_WINDOW_MS` are counted, not
 * printed; the first one after the window prints with `repeated: N` (how many were held back). A wallet with no
 * funds or a node refusing the same transaction no longer fills the log with the same line every second.
 */
function createRepeatLimiter(now: () => number) {
  const seen = new Map<string, { at: number; held: number }>();
  return {
    pass(prefix: string, fields: Fields | undefined, emit: (f: Fields | undefined) => void): void {
      const stable = fields ? Object.entries(fields).filter(([k]) => !VOLATILE_FIELDS.has(k)) : [];
      let key: string;
      try {
        key = `${prefix}|${JSON.stringify(stable, (_k, v) => (typeof v === 'bigint' ? v.toString() : v instanceof Error ? v.message : v))}`;
      } catch {
        return emit(fields);
      }
      const t = now();
      const s = seen.get(key);
      if (s && t - s.at < REPEAT_WINDOW_MS) {
        s.held += 1;
        return;
      }
      if (seen.size >= MAX_KEYS) seen.clear();
      seen.set(key, { at: t, held: 0 });
      emit(s && s.held > 0 ? { ...fields, repeated: s.held } : fields);
    },
  };
}

export function createLogger(tag = 'wcp', opts: LoggerOptions = {}): Logger {
  const json =
    opts.json ??
    (process.env.WCP_LOG_FORMAT === 'json' || (process.env.WCP_LOG_FORMAT !== 'pretty' && !process.stdout.isTTY));
  const level = LEVELS[opts.level ?? (process.env.WCP_LOG_LEVEL as string) ?? 'info'] ?? 3;
  const write = opts.write ?? ((line: string) => (json ? process.stdout : process.stderr).write(`${line}\n`));
  const consola: ConsolaInstance = createConsola({
    level,
    reporters: [
      {
        log(obj: LogObject) {
          const [msg, fields] = obj.args as [string, Fields | undefined];
          const tagName = obj.tag || tag;
          const problem = obj.type === 'warn' || obj.type === 'error';
          if (json || problem) {
            const rec: Fields = { ts: new Date(obj.date).toISOString(), level: obj.type, tag: tagName, msg };
            for (const [k, v] of Object.entries(fields ?? {})) rec[k] = jsonSafe(v);
            const line = redact(JSON.stringify(rec));
            // The operator's page shows the last warnings and errors as printed: redacted like the line.
            if (problem) keepProblem(line);
            if (json) return write(line);
          }
          const kv = Object.entries(fields ?? {})
            .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(jsonSafe(v))}`)
            .join(' ');
          const time = new Date(obj.date).toISOString().slice(11, 23);
          write(redact(`${time} ${obj.type.toUpperCase().padEnd(5)} [${tagName}] ${msg}${kv ? ` ${kv}` : ''}`));
        },
      },
    ],
  });
  const limiter = createRepeatLimiter(opts.now ?? Date.now);
  const make = (c: ConsolaInstance, t: string): Logger => ({
    debug: (m, f) => c.debug(m, f),
    info: (m, f) => c.info(m, f),
    warn: (m, f) => limiter.pass(`warn|${t}|${m}`, f, (extra) => c.warn(m, extra)),
    error: (m, f) => limiter.pass(`error|${t}|${m}`, f, (extra) => c.error(m, extra)),
    child: (sub) => make(c.withTag(sub), `${t}:${sub}`),
  });
  return make(consola.withTag(tag), tag);
}
