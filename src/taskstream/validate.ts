/**
 * Validation of everything the executor sends. Executor messages are untrusted: each decoded message goes
 * through `parseExecutorMessage`, which returns a normalized value or a reason naming the bad field; it never
 * throws, whatever it is given. Semantic checks (is this activity ours, is it a duplicate) live in the bridge.
 */
import * as v from 'valibot';
import type { CompletionResult } from './types.ts';
import { ACTIVITY_ID_RE, keyProblem } from './refs.ts';

/** Limits on executor-supplied fields. */
export const LIMITS = {
  idLength: 128,
  textLength: 2048,
  metadataJsonBytes: 64 * 1024,
  outputRefs: 64,
  outputRefLength: 1024,
  activityTypes: 256,
  resyncIds: 10_000,
  maxConcurrency: 100_000,
} as const;

/** Activity type names: a path-safe token starting with a letter or digit, at most 128 chars. */
export const ACTIVITY_TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const ERROR_CODE_RE = /^[A-Z][A-Z0-9_]{0,63}$/;
const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;
const OUTPUT_NAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/** One declared output of an activity type: stored at `blob:<activity_id>/<key>`. */
export interface OutputDecl {
  name: string;
  key: string;
  contentType: string;
  /** Whether a success must carry it (Capabilities' `optional` negated; true when not said). */
  required?: boolean;
}

/** A validated executor message, by `kind`. */
export type ExecutorMessage =
  | { kind: 'hello'; executor_id: string; executor_version: string; protocol_version: number }
  | { kind: 'capabilities'; activity_types: string[]; max_concurrency: number; outputs: Record<string, OutputDecl[]> }
  | { kind: 'capacity_update'; credits: number; assignments_received: number }
  | { kind: 'progress'; activity_id: string; fraction: number; message: string }
  | { kind: 'completion'; activity_id: string; attempt: number; result: CompletionResult }
  | { kind: 'storage_request'; request_id: string; activity_id: string; key: string; method: 'GET' | 'PUT' }
  | { kind: 'pong'; nonce: string }
  | { kind: 'resync'; running_activity_ids: string[] };

/** `parseExecutorMessage`'s answer: the message, or why not (with the activity id when one was readable). */
export type ParseResult = { ok: true; msg: ExecutorMessage } | { ok: false; reason: string; activity_id?: string };

const activityId = v.pipe(v.string(), v.regex(ACTIVITY_ID_RE, 'not a valid activity id'));
const text = v.pipe(v.string(), v.maxLength(LIMITS.textLength, `longer than ${LIMITS.textLength} characters`));
const u32 = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(0xffffffff));
/** uint64 arrives as a decimal string (decoded) or a number; normalized to its decimal string. */
const u64 = v.pipe(
  v.union([v.pipe(v.string(), v.regex(/^\d{1,20}$/)), v.pipe(v.number(), v.integer(), v.minValue(0))]),
  v.transform((x) => String(x)),
);

const hello = v.object({
  executor_id: v.pipe(v.string(), v.minLength(1, 'is empty'), v.maxLength(LIMITS.idLength)),
  executor_version: v.pipe(v.string(), v.maxLength(LIMITS.idLength)),
  protocol_version: u32,
});

const outputDecl = v.object({
  name: v.pipe(v.string(), v.regex(OUTPUT_NAME_RE, 'not a valid output name')),
  key: v.pipe(
    v.string(),
    v.check((k) => keyProblem(k) === null, 'not a valid object key'),
  ),
  content_type: v.pipe(v.string(), v.maxLength(255)),
  optional: v.nullish(v.boolean(), false),
});

const capabilities = v.object({
  activity_types: v.pipe(
    v.array(v.pipe(v.string(), v.regex(ACTIVITY_TYPE_RE, 'not a valid activity type'))),
    v.maxLength(LIMITS.activityTypes),
  ),
  max_concurrency: v.pipe(u32, v.minValue(1, 'must be at least 1'), v.maxValue(LIMITS.maxConcurrency)),
  outputs: v.optional(
    v.pipe(
      v.array(
        v.object({
          activity_type: v.pipe(v.string(), v.regex(ACTIVITY_TYPE_RE)),
          outputs: v.pipe(v.array(outputDecl), v.maxLength(LIMITS.outputRefs)),
        }),
      ),
      v.maxLength(LIMITS.activityTypes),
    ),
    [],
  ),
});

const capacityUpdate = v.object({
  credits: v.pipe(u32, v.maxValue(LIMITS.maxConcurrency)),
  assignments_received: u64,
});

const progress = v.object({
  activity_id: activityId,
  fraction: v.pipe(v.number(), v.finite('is not a finite number'), v.minValue(0), v.maxValue(1)),
  message: text,
});

const success = v.object({
  output_refs: v.pipe(
    v.record(
      v.pipe(v.string(), v.regex(OUTPUT_NAME_RE, 'not a valid output name')),
      // Any short string: whether it is a blob reference in the activity's own namespace is the bridge's
      // output check, so that a bad ref is refused as OUTPUT_INVALID rather than as a malformed message.
      v.pipe(v.string(), v.maxLength(LIMITS.outputRefLength, 'too long')),
    ),
    v.check((r) => Object.keys(r).length <= LIMITS.outputRefs, `more than ${LIMITS.outputRefs} outputs`),
  ),
  metadata_json: v.pipe(
    v.string(),
    v.maxLength(LIMITS.metadataJsonBytes, 'too large'),
    v.check((s) => {
      if (s === '') return true;
      try {
        const x: unknown = JSON.parse(s);
        return x !== null && typeof x === 'object' && !Array.isArray(x);
      } catch {
        return false;
      }
    }, 'not a JSON object'),
  ),
});

const failure = v.object({
  code: v.pipe(v.string(), v.regex(ERROR_CODE_RE, 'not an UPPER_SNAKE code')),
  message: text,
  retryable: v.boolean(),
});

const completion = v.object({
  activity_id: activityId,
  attempt: u32,
  result: v.picklist(['success', 'failure'], 'has neither success nor failure'),
  success: v.nullish(success),
  failure: v.nullish(failure),
});

const storageRequest = v.object({
  request_id: v.pipe(v.string(), v.regex(REQUEST_ID_RE, 'not a valid request id')),
  activity_id: activityId,
  key: v.pipe(v.string(), v.minLength(1), v.maxLength(600)),
  method: v.picklist(['GET', 'PUT'], 'must be GET or PUT'),
});

const pong = v.object({ nonce: u64 });

const resync = v.object({
  running_activity_ids: v.pipe(v.array(activityId), v.maxLength(LIMITS.resyncIds)),
});

function describe(issues: readonly v.BaseIssue<unknown>[], prefix: string): string {
  const issue = issues[0];
  if (issue === undefined) return `${prefix}: invalid`;
  const path = v.getDotPath(issue);
  return `${prefix}${path ? `.${path}` : ''}: ${issue.message}`.slice(0, 300);
}

function idOf(x: unknown): string | undefined {
  if (x === null || typeof x !== 'object') return undefined;
  const id = (x as { activity_id?: unknown }).activity_id;
  return typeof id === 'string' && ACTIVITY_ID_RE.test(id) ? id : undefined;
}

function fail(reason: string, activity_id: string | undefined): ParseResult {
  return activity_id === undefined ? { ok: false, reason } : { ok: false, reason, activity_id };
}

/** Validates one decoded `ExecutorMessage` (`{ msg: '<member>', <member>: {...} }`). Never throws. */
export function parseExecutorMessage(raw: unknown): ParseResult {
  try {
    return parseUnsafe(raw);
  } catch (e) {
    return { ok: false, reason: `unparseable message: ${String((e as Error)?.message ?? e).slice(0, 200)}` };
  }
}

function parseUnsafe(raw: unknown): ParseResult {
  if (raw === null || typeof raw !== 'object') return { ok: false, reason: 'message is not an object' };
  const member = (raw as { msg?: unknown }).msg;
  if (typeof member !== 'string') return { ok: false, reason: 'message has no oneof member set' };
  const body: unknown = (raw as Record<string, unknown>)[member];
  const id = idOf(body);
  const run = <S extends v.GenericSchema>(schema: S): v.InferOutput<S> | string => {
    const r = v.safeParse(schema, body);
    return r.success ? r.output : describe(r.issues, member);
  };
  switch (member) {
    case 'hello': {
      const r = run(hello);
      return typeof r === 'string' ? fail(r, id) : { ok: true, msg: { kind: 'hello', ...r } };
    }
    case 'capabilities': {
      const r = run(capabilities);
      if (typeof r === 'string') return fail(r, id);
      const outputs: Record<string, OutputDecl[]> = {};
      for (const t of r.outputs) {
        outputs[t.activity_type] = t.outputs.map((o) => ({
          name: o.name,
          key: o.key,
          contentType: o.content_type,
          required: !o.optional,
        }));
      }
      return {
        ok: true,
        msg: {
          kind: 'capabilities',
          activity_types: [...new Set(r.activity_types)],
          max_concurrency: r.max_concurrency,
          outputs,
        },
      };
    }
    case 'capacity_update': {
      const r = run(capacityUpdate);
      return typeof r === 'string'
        ? fail(r, id)
        : {
            ok: true,
            msg: { kind: 'capacity_update', credits: r.credits, assignments_received: Number(r.assignments_received) },
          };
    }
    case 'progress': {
      const r = run(progress);
      return typeof r === 'string' ? fail(r, id) : { ok: true, msg: { kind: 'progress', ...r } };
    }
    case 'completion': {
      const r = run(completion);
      if (typeof r === 'string') return fail(r, id);
      if (r.result === 'success') {
        if (!r.success) return fail('completion.success: missing', id);
        return {
          ok: true,
          msg: {
            kind: 'completion',
            activity_id: r.activity_id,
            attempt: r.attempt,
            result: { ok: true, output_refs: { ...r.success.output_refs }, metadata_json: r.success.metadata_json },
          },
        };
      }
      if (!r.failure) return fail('completion.failure: missing', id);
      return {
        ok: true,
        msg: {
          kind: 'completion',
          activity_id: r.activity_id,
          attempt: r.attempt,
          result: { ok: false, code: r.failure.code, message: r.failure.message, retryable: r.failure.retryable },
        },
      };
    }
    case 'storage_request': {
      const r = run(storageRequest);
      return typeof r === 'string' ? fail(r, id) : { ok: true, msg: { kind: 'storage_request', ...r } };
    }
    case 'pong': {
      const r = run(pong);
      return typeof r === 'string' ? fail(r, id) : { ok: true, msg: { kind: 'pong', nonce: r.nonce } };
    }
    case 'resync': {
      const r = run(resync);
      return typeof r === 'string'
        ? fail(r, id)
        : { ok: true, msg: { kind: 'resync', running_activity_ids: [...new Set(r.running_activity_ids)] } };
    }
    default:
      return { ok: false, reason: `unknown message member "${member.slice(0, 40)}"` };
  }
}
