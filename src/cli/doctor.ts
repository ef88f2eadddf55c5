/** `wcp doctor [--json] [--config FILE]`: the preflight of `src/doctor/` (sends no transaction). */
import { defineCommand } from 'citty';
import { loadConfig } from '../config/load.ts';
import { ExitCode } from '../internal/exit-codes.ts';
import { redact } from '../internal/redact.ts';
import { rejectUnknownArgs } from './args.ts';

const doctorArgs = {
  config: {
    type: 'string',
    description: 'Config file (default: configs/$ENVIRONMENT.toml, else the embedded local default)',
    valueHint: 'file',
  },
  json: { type: 'boolean', description: 'One JSON object: {"ok", "checks": [{"name","status","detail","fix"}]}' },
} as const;

export const doctorCommand = defineCommand({
  meta: {
    name: 'doctor',
    description: 'Check chain, contracts, wallet, executor, subnet-api, store and clock; sends no transaction',
  },
  args: doctorArgs,
  async run({ args, rawArgs }) {
    rejectUnknownArgs(rawArgs, doctorArgs, 0);
    const config = loadConfig(args.config ? { path: args.config } : {});
    // Imported here: the checks pull in grpc-js and the protos, which `wcp run` would otherwise evaluate at start.
    const { runDoctor, formatDoctor } = await import('../doctor/index.ts');
    const results = await runDoctor(config);
    const ok = !results.some((r) => r.status === 'fail');
    const text = args.json ? `${JSON.stringify({ ok, checks: results })}\n` : formatDoctor(results);
    await new Promise<void>((resolve) => process.stdout.write(redact(text), () => resolve()));
    process.exitCode = ok ? ExitCode.Ok : ExitCode.Failure;
  },
});
