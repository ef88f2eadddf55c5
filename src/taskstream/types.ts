/**
 * What an executor reports for one task, after validation: the one shape both sides of the TaskStream agree on
 * (the daemon's bridge and the executor SDK). Wire shapes are in `protocol.ts`; validation in `validate.ts`.
 */
export type CompletionResult =
  | { ok: true; output_refs: Record<string, string>; metadata_json: string }
  | { ok: false; code: string; message: string; retryable: boolean };
