#!/usr/bin/env bun
/** The `wcp` binary's entry point: the CLI with strict errors and stable exit codes. */
// First import: signals from here on end wcp with an exit code, not by signal (see early-signals.ts).
import './internal/early-signals.ts';
// Then: under Deno it refuses missing permissions before any dependency loads (lmdb dlopens at import).
import './runtime/preflight.ts';
import { type CommandDef, runCommand, showUsage } from 'citty';
import { exitCodeFor, printError } from './cli/exit.ts';
import { helpNotes } from './cli/help-notes.ts';
import { main } from './cli/commands.ts';
import { ExitCode } from './internal/exit-codes.ts';

async function resolveCommand(rawArgs: string[]): Promise<[CommandDef, CommandDef | undefined, string[]]> {
  let cmd: CommandDef = main as CommandDef;
  let parent: CommandDef | undefined;
  const path: string[] = [];
  for (const a of rawArgs) {
    if (a.startsWith('-')) continue;
    const subs = (await (typeof cmd.subCommands === 'function' ? cmd.subCommands() : cmd.subCommands)) as
      | Record<string, CommandDef>
      | undefined;
    const next = subs?.[a];
    if (!next) break;
    parent = cmd;
    cmd = next;
    path.push(a);
  }
  return [cmd, parent, path];
}

async function cli(argv: string[]): Promise<number> {
  let rawArgs = argv;
  // `wcp --version` / `-V` is `wcp version`; `wcp help [command…]` is `wcp [command…] --help`.
  if (rawArgs.length === 1 && (rawArgs[0] === '--version' || rawArgs[0] === '-V')) rawArgs = ['version'];
  if (rawArgs[0] === 'help') rawArgs = [...rawArgs.slice(1), '--help'];
  if (rawArgs.length === 0 || rawArgs.includes('--help') || rawArgs.includes('-h')) {
    const [cmd, parent, path] = await resolveCommand(rawArgs);
    await showUsage(cmd, parent);
    const notes = helpNotes(path);
    if (notes !== undefined) await new Promise((done) => process.stdout.write(`${notes}\n`, done));
    return rawArgs.length === 0 ? ExitCode.Usage : ExitCode.Ok;
  }
  try {
    await runCommand(main as CommandDef, { rawArgs });
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.Ok;
  } catch (e) {
    const err = e as { code?: string; name?: string };
    if (err.name === 'CLIError' || (typeof err.code === 'string' && err.code.startsWith('E_'))) {
      const [cmd, parent] = await resolveCommand(rawArgs);
      await showUsage(cmd, parent);
      process.stderr.write(`wcp: ${(e as Error).message}\n`);
      return ExitCode.Usage;
    }
    printError(e);
    return exitCodeFor(e);
  }
}

process.exit(await cli(process.argv.slice(2)));
