/**
 * `wcp status [--json] [--config FILE]`: asks the running daemon (`/status` on `metrics.listen`) and prints the
 * summary the status page shows (`status-text.ts`); when none answers, reads the store (read-only) and says so. Exit 0 when the daemon answered, 1 when only the store could be
 * read (the daemon is not running or its endpoints are off).
 */
import { existsSync } from 'node:fs';
import { defineCommand } from 'citty';
import { loadConfig } from '../config/load.ts';
import { ExitCode } from '../internal/exit-codes.ts';
import { createLogger } from '../internal/logger.ts';
import { redact } from '../internal/redact.ts';
import { openStore } from '../store/store.ts';
import { summarizeStore } from '../store/summary.ts';
import { rejectUnknownArgs } from './args.ts';
import { statusText } from './status-text.ts';

const statusArgs = {
  config: {
    type: 'string',
    description: 'Config file (default: configs/$ENVIRONMENT.toml, else the embedded local default)',
    valueHint: 'file',
  },
  json: { type: 'boolean', description: 'Print one JSON object' },
} as const;

async function askDaemon(listen: string): Promise<Record<string, unknown> | undefined> {
  const host = listen.startsWith('0.0.0.0') ? listen.replace('0.0.0.0', '127.0.0.1') : listen;
  try {
    const res = await fetch(`http://${host}/status`, { signal: AbortSignal.timeout(3_000) });
    if (!res.ok) return undefined;
    return (await res.json()) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Indented `key: value` lines of a JSON object, for people. */
function pretty(o: unknown, indent = ''): string {
  if (o === null || typeof o !== 'object') return `${JSON.stringify(o)}\n`;
  const entries = Array.isArray(o) ? o.map((v, i) => [String(i), v] as const) : Object.entries(o);
  if (entries.length === 0) return Array.isArray(o) ? '[]\n' : '{}\n';
  return `\n${entries.map(([k, v]) => `${indent}  ${k}: ${pretty(v, `${indent}  `).replace(/^\n/, '\n')}`).join('')}`;
}

export const statusCommand = defineCommand({
  meta: {
    name: 'status',
    description: 'What the running daemon is doing (or, when none answers, what its store holds)',
  },
  args: statusArgs,
  async run({ args, rawArgs }) {
    rejectUnknownArgs(rawArgs, statusArgs, 0);
    const config = loadConfig(args.config ? { path: args.config } : {});
    let body: Record<string, unknown>;
    let live = false;
    const daemon = config.metrics.enabled ? await askDaemon(config.metrics.listen) : undefined;
    if (daemon) {
      body = { source: `daemon at ${config.metrics.listen}`, ...daemon };
      live = true;
    } else if (existsSync(config.store.path)) {
      const store = openStore({
        path: config.store.path,
        readOnly: true,
        logger: createLogger('status', { level: 'error' }),
      });
      try {
        body = {
          source: `store ${config.store.path} (no daemon answered on ${config.metrics.listen})`,
          store: summarizeStore(store),
        };
      } finally {
        await store.close();
      }
    } else {
      body = {
        source: `nothing: no daemon answered on ${config.metrics.listen} and ${config.store.path} does not exist`,
      };
    }
    // A daemon's answer reads as the status page does; a store's summary (or an older daemon's answer) as its fields.
    const text = args.json
      ? `${JSON.stringify(body)}\n`
      : live && body.worker
        ? statusText(body)
        : `wcp status${pretty(body)}`;
    await new Promise<void>((resolve) => process.stdout.write(redact(text), () => resolve()));
    process.exitCode = live ? ExitCode.Ok : ExitCode.Failure;
  },
});
