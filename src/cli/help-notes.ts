/**
 * What `wcp help <command>` adds below citty's flag list: for `run`, the environment overrides, the signals and
 * the exit codes an operator scripts against. Exit-code lines come from one table keyed by `ExitCode`, so a new
 * code cannot be added without its line here.
 */
import { ExitCode } from '../internal/exit-codes.ts';

const EXIT_TEXT: Record<keyof typeof ExitCode, string> = {
  Ok: 'stopped after draining',
  Failure: 'failure (named on stderr)',
  Usage: 'bad command-line arguments',
  ConfigInvalid: 'bad config: every bad field named (also key files readable by others, a wrong keystore password)',
  StoreFailed: 'the store cannot open or is not a store (move it aside: wcp rebuilds from the chain)',
  ChainUnreachable: 'stopped while still waiting for the chain at start',
  ChainIdMismatch: 'the chain id differs from ethereum.chain_id',
  WorkerNotActive: 'the wallet is not a registered, active worker',
  StoreLocked: 'another wcp (its pid named) holds the store',
  ListenFailed: 'the metrics/health listener could not bind metrics.listen (port taken or not allowed)',
  Forced: 'a second signal forced the exit (the store stays consistent)',
};

const exitLines = (Object.keys(ExitCode) as Array<keyof typeof ExitCode>)
  .map((k) => `  ${String(ExitCode[k]).padEnd(5)}${EXIT_TEXT[k]}`)
  .join('\n');

const RUN_NOTES = `ENVIRONMENT

  WCP__SECTION__KEY=value      overrides any config key, e.g. WCP__SCHEDULER__POLL_INTERVAL=2s
  WCP_LOG_LEVEL, WCP_LOG_FORMAT  short forms of WCP__LOG__LEVEL, WCP__LOG__FORMAT
  WCP_CONFIG=FILE              the config file (as --config)
  WCP_CONFIG_DIR, ENVIRONMENT  without a file: DIR/ENVIRONMENT.toml (default ./configs, local; local is embedded)
  Any other WCP_ variable is refused (exit 3) with the closest valid name.

SIGNALS

  SIGTERM, SIGINT, SIGHUP      drain: no new claims; running tasks get shutdown.drain_timeout, then exit 0
  a second one                 exit 130 at once
  There is no config reload: restart to apply a new config.

EXIT CODES

${exitLines}
`;

/** Extra help text for the command at `path` (e.g. `['run']`), or undefined. */
export function helpNotes(path: readonly string[]): string | undefined {
  return path.length === 1 && path[0] === 'run' ? RUN_NOTES : undefined;
}
