/**
 * Logging through consola: short sentences with structured snake_case fields. JSON lines when stdout is not a
 * terminal (or `WCP_LOG_FORMAT=json`), pretty otherwise. Every line passes through `redact()` (`redact.ts`): a
 * registered secret can never reach the output, even inside an error message, and URLs print as scheme://host:port/….
 */
import { createConsola, type ConsolaInstance, type LogObject } from 'consola';
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
          if (json) {
            const rec: Fields = { ts: new Date(obj.date).toISOString(), level: obj.type, tag: tagName, msg };
            for (const [k, v] of Object.entries(fields ?? {})) rec[k] = jsonSafe(v);
            write(redact(JSON.stringify(rec)));
          } else {
            const kv = Object.entries(fields ?? {})
              .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(jsonSafe(v))}`)
              .join(' ');
            const time = new Date(obj.date).toISOString().slice(11, 23);
            write(redact(`${time} ${obj.type.toUpperCase().padEnd(5)} [${tagName}] ${msg}${kv ? ` ${kv}` : ''}`));
          }
        },
      },
    ],
  });
  const make = (c: ConsolaInstance, t: string): Logger => ({
    debug: (m, f) => c.debug(m, f),
    info: (m, f) => c.info(m, f),
    warn: (m, f) => c.warn(m, f),
    error: (m, f) => c.error(m, f),
    child: (sub) => make(c.withTag(sub), `${t}:${sub}`),
  });
  return make(consola.withTag(tag), tag);
}
