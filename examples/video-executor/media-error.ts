/**
 * The example executor's own errors, with a stable `code` (the daemon's error codes are not the place for an
 * executor's): the SDK fails the task with the message, which ends in `[CODE]` as the daemon's errors print. Not
 * retryable: a bad input stays bad, a failed ffmpeg failed on this input, a cancel was asked for.
 */
export type MediaErrorCode = 'MEDIA_INVALID_INPUT' | 'MEDIA_FAILED' | 'MEDIA_ABORTED';

export class MediaError extends Error {
  readonly code: MediaErrorCode;
  readonly retryable = false;
  readonly details: string[];

  constructor(code: MediaErrorCode, message: string, opts: { details?: string[]; cause?: unknown } = {}) {
    super(`${message} [${code}]`, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'MediaError';
    this.code = code;
    this.details = opts.details ?? [];
  }
}

export function isMediaError(e: unknown): e is MediaError {
  return e instanceof MediaError;
}
