/** Maps errors to the binary's exit codes and prints them for a person (never a secret: see logger.redact). */
import { isWcpError } from '../internal/errors.ts';
import { ExitCode } from '../internal/exit-codes.ts';
import { redact } from '../internal/logger.ts';
import { denoPermissionMessage, isDenoPermissionError } from '../runtime/deno.ts';

export function exitCodeFor(e: unknown): number {
  if (isDenoPermissionError(e)) return ExitCode.Usage;
  if (!isWcpError(e)) return ExitCode.Failure;
  switch (e.code) {
    case 'CONFIG_INVALID':
    case 'CONFIG_NOT_FOUND':
    case 'CONTRACT_INVALID':
      return ExitCode.ConfigInvalid;
    case 'CLI_USAGE':
      return ExitCode.Usage;
    case 'STORE_OPEN_FAILED':
    case 'STORE_CORRUPT':
      return ExitCode.StoreFailed;
    case 'STORE_LOCKED':
      return ExitCode.StoreLocked;
    case 'CHAIN_UNREACHABLE':
      return ExitCode.ChainUnreachable;
    case 'CHAIN_ID_MISMATCH':
      return ExitCode.ChainIdMismatch;
    case 'WORKER_NOT_ACTIVE':
      return ExitCode.WorkerNotActive;
    case 'LISTEN_FAILED':
      return ExitCode.ListenFailed;
    default:
      return ExitCode.Failure;
  }
}

export function printError(e: unknown): void {
  if (isDenoPermissionError(e)) {
    process.stderr.write(`wcp: ${redact(denoPermissionMessage(e.message))}\n`);
    return;
  }
  const text = isWcpError(e) ? e.describe() : e instanceof Error ? (e.stack ?? e.message) : String(e);
  process.stderr.write(`wcp: ${redact(text)}\n`);
}
