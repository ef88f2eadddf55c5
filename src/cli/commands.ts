/**
 * The `wcp` command line: `run`, `status`, `doctor`, `key`, `db scan`, `config check|example`, `version`; `--help`
 * on every command (`help-notes.ts` adds what a flag list cannot say). Parsing via
 * citty (subcommands and generated usage), made strict by `rejectUnknownArgs`.
 */
import { defineCommand } from 'citty';
import { EXAMPLE_CONFIG } from '../config/embedded.ts';
import { loadConfig, loadConfigWithFile, redactedConfig } from '../config/load.ts';
import { renderConfigToml } from '../config/render.ts';
import { WcpError } from '../internal/errors.ts';
import { createLogger } from '../internal/logger.ts';
import { buildInfo, buildVersion } from '../runtime/env.ts';
import { openStore } from '../store/store.ts';
import { configArg, rejectUnknownArgs, writeFully } from './args.ts';
import { doctorCommand } from './doctor.ts';
import { keyCommand } from './key.ts';
import { statusCommand } from './status.ts';
import { runDaemon } from './run.ts';

const runArgs = { ...configArg } as const;
const run = defineCommand({
  meta: {
    name: 'run',
    description:
      'Run the worker daemon (poll, claim, execute, heartbeat, complete) until SIGINT, SIGTERM or SIGHUP drains it',
  },
  args: runArgs,
  async run({ args, rawArgs }) {
    rejectUnknownArgs(rawArgs, runArgs, 0);
    process.exitCode = await runDaemon({ ...(args.config ? { configPath: args.config } : {}) });
  },
});

const scanArgs = {
  prefix: {
    type: 'positional',
    required: true,
    description: 'Key prefix, e.g. claim_job: inflight: tx: lane: done: nonce: last_scan_block quarantine:',
  },
  json: { type: 'boolean', description: 'One JSON object per line: {"key", "value"}' },
  limit: { type: 'string', description: 'At most this many records', valueHint: 'n' },
  db: { type: 'string', description: 'Store path (default: store.path from the config)', valueHint: 'file' },
  ...configArg,
} as const;
const scan = defineCommand({
  meta: { name: 'scan', description: 'List store records under a key prefix (read-only; safe while wcp runs)' },
  args: scanArgs,
  async run({ args, rawArgs }) {
    rejectUnknownArgs(rawArgs, scanArgs, 1);
    let limit: number | undefined;
    if (args.limit !== undefined) {
      limit = Number(args.limit);
      if (!Number.isInteger(limit) || limit < 1)
        throw new WcpError('CLI_USAGE', `--limit must be a positive integer, got ${JSON.stringify(args.limit)}`);
    }
    const path = args.db ?? loadConfig(args.config ? { path: args.config } : {}).store.path;
    const store = openStore({ path, readOnly: true, logger: createLogger('db') });
    try {
      const entries = store.scan(String(args.prefix), limit ? { limit } : {});
      const lines = entries.map((e) =>
        args.json
          ? `${JSON.stringify(e.error ? { key: e.key, error: e.error } : { key: e.key, value: e.value })}\n`
          : `${e.key}\t${e.error ? `<${e.error}>` : JSON.stringify(e.value)}\n`,
      );
      await writeFully(process.stdout, lines.join(''));
      if (!args.json)
        await writeFully(
          process.stderr,
          `${entries.length} record(s) under ${JSON.stringify(args.prefix)} in ${path}\n`,
        );
    } finally {
      await store.close();
    }
  },
});

const db = defineCommand({
  meta: { name: 'db', description: 'Inspect the local store' },
  subCommands: { scan },
});

const checkArgs = {
  ...configArg,
  json: {
    type: 'boolean',
    description: 'Print the resolved values as one JSON object (camelCase, units in names) instead of TOML',
  },
} as const;
const check = defineCommand({
  meta: {
    name: 'check',
    description:
      'Validate the config and print it back as TOML, every default filled in (secrets and URL paths hidden)',
  },
  args: checkArgs,
  async run({ args, rawArgs }) {
    rejectUnknownArgs(rawArgs, checkArgs, 0);
    const { config: cfg, file } = loadConfigWithFile(args.config ? { path: args.config } : {});
    const text = args.json ? `${JSON.stringify(redactedConfig(cfg))}\n` : renderConfigToml(file, cfg.source);
    await writeFully(process.stdout, text);
  },
});
const example = defineCommand({
  meta: {
    name: 'example',
    description: 'Print the annotated example config for a real network (redirect it to a file, then fill it in)',
  },
  args: {},
  async run({ rawArgs }) {
    rejectUnknownArgs(rawArgs, {}, 0);
    await writeFully(process.stdout, EXAMPLE_CONFIG);
  },
});
const config = defineCommand({
  meta: { name: 'config', description: 'Configuration tools' },
  subCommands: { check, example },
});

const version = defineCommand({
  meta: { name: 'version', description: 'Print the version, commit, build target and date, and the runtime' },
  args: {},
  async run({ rawArgs }) {
    rejectUnknownArgs(rawArgs, {}, 0);
    const i = buildInfo();
    await writeFully(
      process.stdout,
      `wcp ${i.version} (${i.runtime} ${i.runtimeVersion})\ncommit: ${i.commit}\ntarget: ${i.target} (running on ${i.platform})\nbuilt: ${i.buildDate}\n`,
    );
  },
});

export const main = defineCommand({
  meta: {
    name: 'wcp',
    version: buildVersion(),
    description: 'Worker Client Process: claims on-chain activities and runs them on the local executor',
  },
  subCommands: { run, status: statusCommand, doctor: doctorCommand, db, config, key: keyCommand, version },
});
