/**
 * Imported first by src/main.ts, for its side effect: under Deno, refuses to start (exit 2, usage) with a message
 * naming the missing permissions before any dependency loads; lmdb dlopens its addon at import time, and without
 * `--allow-ffi` that would be an uncaught `NotCapable` with a stack trace. A no-op under Bun and Node.
 */
import { ExitCode } from '../internal/exit-codes.ts';
import { denoPermissionMessage, missingDenoPermissions } from './deno.ts';

const missing = missingDenoPermissions();
if (missing.length > 0) {
  process.stderr.write(`wcp: ${denoPermissionMessage(missing)}\n`);
  process.exit(ExitCode.Usage);
}
