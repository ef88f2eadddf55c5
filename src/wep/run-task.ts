/**
 * Runs one assigned task through its handler: resolves and validates the input (the handler never sees an
 * invalid one), enforces the deadline, races the handler against its AbortSignal, validates the outputs, and
 * turns every outcome into a Completion result. Never throws.
 */
import * as v from 'valibot';
import type { CompletionResult } from '../taskstream/types.ts';
import { formatBlobRef, parseBlobRef, parseInputRef } from '../taskstream/refs.ts';
import { errorText } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import { type ActivitySpec, describeIssues } from './spec.ts';

export interface StorageGrant {
  url: string;
  method: string;
  expiresAtMs: number;
  headers: Record<string, string>;
}

/** What a handler gets. */
export interface HandlerContext {
  activityId: string;
  activityType: string;
  attempt: number;
  /** The input, validated against the spec, defaults applied. */
  input: Record<string, unknown>;
  inputRef: string;
  /** Blob reference (e.g. `blob:41/raw.mp4`) → presigned GET URL, as wcp sent them (may be empty). */
  inputUrls: Record<string, string>;
  /** Output key (e.g. `video.mp4`) → presigned PUT URL, as wcp sent them (may be empty). */
  outputUrls: Record<string, string>;
  deadlineUnixMs: number;
  workflowInstance: string;
  /** Reports progress in [0, 1] (dropped while disconnected). */
  progress(fraction: number, message?: string): void;
  /** Aborts on Cancel, deadline or shutdown; `signal.reason` says which. */
  signal: AbortSignal;
  /** Asks wcp for a presigned URL: PUT a key of this activity's outputs, GET an input blob reference. */
  requestStorage(key: string, method: 'GET' | 'PUT'): Promise<StorageGrant>;
  /** `blob:<activityId>/<key>` of a declared output. */
  outputRef(name: string): string;
  /** JSON-serializable object sent as the Completion's metadata_json. */
  setMetadata(metadata: Record<string, unknown>): void;
}

/** Returns output name → blob reference. Throw to fail; an error with `retryable: false` is not retried. */
export type Handler = (ctx: HandlerContext) => Promise<Record<string, string>>;

export interface TaskInput {
  activity_id: string;
  activity_type: string;
  attempt: number;
  input_ref: string;
  input_json: string;
  input_urls: Record<string, string>;
  output_urls: Record<string, string>;
  deadline_unix_ms: number;
  workflow_instance: string;
}

/** Why a run was aborted (the AbortSignal's reason). */
export type AbortCause = { cause: 'cancel'; reason: string } | { cause: 'deadline' } | { cause: 'shutdown' };

export interface RunTaskDeps {
  spec: ActivitySpec;
  handler: Handler;
  controller: AbortController;
  logger: Logger;
  progress(fraction: number, message: string): void;
  requestStorage(key: string, method: 'GET' | 'PUT'): Promise<StorageGrant>;
}

function failure(code: string, message: string, retryable: boolean): CompletionResult {
  return { ok: false, code, message: message.slice(0, 2000), retryable };
}

async function loadInput(task: TaskInput, deps: RunTaskDeps): Promise<{ value: unknown } | CompletionResult> {
  if (task.input_json !== '') {
    try {
      return { value: JSON.parse(task.input_json) };
    } catch (e) {
      return failure('INPUT_INVALID', `input_json is not valid JSON: ${errorText(e)}`, false);
    }
  }
  let parsed: ReturnType<typeof parseInputRef>;
  try {
    parsed = parseInputRef(task.input_ref);
  } catch (e) {
    return failure('INPUT_INVALID', errorText(e), false);
  }
  if (parsed.kind === 'json') return { value: parsed.value };
  // A blob input_ref: the parameters are a JSON document in storage.
  try {
    const url = task.input_urls[parsed.ref] ?? (await deps.requestStorage(parsed.ref, 'GET')).url;
    const res = await fetch(url, { signal: deps.controller.signal });
    if (!res.ok) return failure('INPUT_UNAVAILABLE', `GET input ${parsed.ref}: HTTP ${res.status}`, true);
    const text = await res.text();
    try {
      return { value: JSON.parse(text) };
    } catch (e) {
      return failure('INPUT_INVALID', `input blob is not valid JSON: ${errorText(e)}`, false);
    }
  } catch (e) {
    return failure('INPUT_UNAVAILABLE', `cannot fetch input ${parsed.ref}: ${errorText(e)}`, true);
  }
}

function abortResult(signal: AbortSignal): CompletionResult {
  const r = signal.reason as AbortCause | undefined;
  if (r?.cause === 'cancel') return failure('CANCELLED', `cancelled: ${r.reason}`, false);
  if (r?.cause === 'deadline')
    return failure('DEADLINE_EXCEEDED', 'the task deadline passed before the handler finished', false);
  // The proto's graceful shutdown: the run is given back, and wcp re-dispatches it without counting it.
  return failure('SHUTTING_DOWN', 'executor shutting down before the task finished', true);
}

/** Runs the task; the returned result is what goes in the Completion. */
export async function runTask(
  task: TaskInput,
  deps: RunTaskDeps,
): Promise<{ result: CompletionResult; metadata: string }> {
  const { spec, controller } = deps;
  let metadata = '';
  const loaded = await loadInput(task, deps);
  if (!('value' in loaded))
    return { result: controller.signal.aborted ? abortResult(controller.signal) : loaded, metadata };
  const checked = v.safeParse(spec.inputSchema, loaded.value);
  if (!checked.success) {
    return {
      result: failure('INPUT_INVALID', `input does not match ${spec.name}: ${describeIssues(checked.issues)}`, false),
      metadata,
    };
  }
  const input = checked.output;

  const specDeadline =
    spec.timeoutSeconds !== undefined ? Date.now() + spec.timeoutSeconds * 1000 : Number.POSITIVE_INFINITY;
  const deadline = Math.min(task.deadline_unix_ms > 0 ? task.deadline_unix_ms : Number.POSITIVE_INFINITY, specDeadline);
  let timer: ReturnType<typeof setTimeout> | undefined;
  if (Number.isFinite(deadline)) {
    // setTimeout caps at ~24.8 days; longer deadlines need no timer.
    const ms = Math.max(0, deadline - Date.now());
    if (ms < 2 ** 31 - 1) timer = setTimeout(() => controller.abort({ cause: 'deadline' } satisfies AbortCause), ms);
  }
  const ctx: HandlerContext = {
    activityId: task.activity_id,
    activityType: task.activity_type,
    attempt: task.attempt,
    input,
    inputRef: task.input_ref,
    inputUrls: { ...task.input_urls },
    outputUrls: { ...task.output_urls },
    deadlineUnixMs: task.deadline_unix_ms,
    workflowInstance: task.workflow_instance,
    progress: (fraction, message = '') => {
      if (Number.isFinite(fraction)) deps.progress(Math.min(1, Math.max(0, fraction)), String(message).slice(0, 1024));
    },
    signal: controller.signal,
    requestStorage: deps.requestStorage,
    outputRef: (name) => {
      const o = spec.outputs[name];
      if (o === undefined) throw new Error(`${spec.name} declares no output "${name}"`);
      return formatBlobRef(task.activity_id, o.key);
    },
    setMetadata: (m) => {
      metadata = JSON.stringify(m);
    },
  };

  try {
    if (controller.signal.aborted) return { result: abortResult(controller.signal), metadata };
    // The handler should honour ctx.signal; if it does not, the task still completes when the signal fires.
    const aborted = new Promise<never>((_, reject) => {
      controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
    });
    const handlerRun = deps.handler(ctx);
    handlerRun.catch(() => undefined); // a late rejection after an abort is not unhandled
    const outputs = await Promise.race([handlerRun, aborted]);
    const out = v.safeParse(spec.outputSchema, outputs);
    if (!out.success)
      return {
        result: failure('OUTPUT_INVALID', `outputs do not match ${spec.name}: ${describeIssues(out.issues)}`, false),
        metadata,
      };
    // Outputs live in the activity's own namespace, always: wcp refuses anything else (even an input passed
    // through) as OUTPUT_INVALID, so the handler's mistake is reported here, with its name.
    for (const [name, ref] of Object.entries(out.output)) {
      const b = parseBlobRef(ref);
      if (b === null || b.namespace !== task.activity_id) {
        return {
          result: failure(
            'OUTPUT_INVALID',
            `output ${name} must be stored under blob:${task.activity_id}/ (got ${ref.slice(0, 100)})`,
            false,
          ),
          metadata,
        };
      }
    }
    return { result: { ok: true, output_refs: out.output, metadata_json: metadata }, metadata };
  } catch (e) {
    if (controller.signal.aborted) return { result: abortResult(controller.signal), metadata };
    const retryable =
      typeof (e as { retryable?: unknown })?.retryable === 'boolean' ? (e as { retryable: boolean }).retryable : true;
    deps.logger.warn('Handler failed.', { activity_id: task.activity_id, error: errorText(e) });
    return { result: failure('HANDLER_ERROR', errorText(e), retryable), metadata };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}
