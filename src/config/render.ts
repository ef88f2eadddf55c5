/**
 * The validated config file printed back as TOML (`wcp config check`): snake_case keys as in the file, every
 * default filled in, durations with units, so the output pastes back into a config file. Secrets never appear:
 * the private key is a commented-out line, URLs show only `scheme://host:port/…` (a URL whose path, query or
 * credentials were hidden carries a comment saying so), and every other value passes the redactor, so a key pasted
 * into any field, or a path field naming no file, shows `[REDACTED]` (with a comment).
 */
import { stringify } from 'smol-toml';
import { displayUrl, redact } from '../internal/redact.ts';
import { ConfigFileSchema, DURATION_SCHEMAS, type ConfigFile } from './schema.ts';

const SECRET_KEYS = new Set(['wallet_private_key']);

/** "15s", "250ms", "3h": the largest unit that divides the value. */
export function formatDurationMs(ms: number): string {
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

type Entries = Record<string, { wrapped?: object }>;

/** The file as plain data with secrets and URLs redacted (for `config check --json`). */
export function printableConfigFile(file: ConfigFile): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [sec, schema] of Object.entries(
    ConfigFileSchema.entries as unknown as Record<string, { wrapped: { entries: Entries } }>,
  )) {
    const values = (file as unknown as Record<string, Record<string, unknown>>)[sec] ?? {};
    const entries = schema.wrapped.entries;
    const o: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(values)) {
      if (SECRET_KEYS.has(key)) continue;
      const isDuration = entries[key]?.wrapped !== undefined && DURATION_SCHEMAS.has(entries[key].wrapped as object);
      if (isDuration && typeof value === 'number') o[key] = formatDurationMs(value);
      else if (typeof value === 'string' && /^[a-z][a-z0-9+.-]*:\/\//i.test(value)) o[key] = displayUrl(value);
      else if (Array.isArray(value))
        o[key] = value.map((x) => (typeof x === 'string' && /^[a-z][a-z0-9+.-]*:\/\//i.test(x) ? displayUrl(x) : x));
      else o[key] = typeof value === 'string' ? redact(value) : value;
    }
    out[sec] = o;
  }
  return out;
}

/** TOML text of the validated file (see the module doc). */
export function renderConfigToml(file: ConfigFile, source: string): string {
  const data = printableConfigFile(file);
  const lines = [`# wcp config check: the resolved config from ${source}, every default filled in`];
  for (const [sec, values] of Object.entries(data)) {
    lines.push('', `[${sec}]`);
    for (const [key, value] of Object.entries(values)) {
      const line = stringify({ [key]: value }).trim();
      const hidden =
        (typeof value === 'string' && value.endsWith('/…')) ||
        (Array.isArray(value) && value.some((x) => typeof x === 'string' && x.endsWith('/…')));
      const secret = typeof value === 'string' && value.includes('[REDACTED]');
      lines.push(
        hidden
          ? `${line} # path, query or credentials hidden: give the full URL in the file or env`
          : secret
            ? `${line} # hidden: a secret-shaped value, or a path naming no file`
            : line,
      );
    }
    if (sec === 'ethereum')
      lines.push(
        '# wallet_private_key = "…" # never printed: use WCP__ETHEREUM__WALLET_PRIVATE_KEY or wallet_key_file',
      );
  }
  return `${lines.join('\n')}\n`;
}
