import { describe, expect, test } from 'bun:test';
import { type CompletionCheck, completionDecision, outputProblem } from './completion.ts';
import type { InflightTask } from './task-table.ts';

const sent = (over: Partial<InflightTask> = {}): InflightTask => ({
  task: {
    activity_id: '7',
    activity_type: 't',
    input_ref: 'json:{}',
    queue_name: 'q',
    deadline_unix_ms: 0,
    attempt: 2,
  },
  stage: 'sent',
  inputRefs: new Set(['blob:3/raw.mp4']),
  cancelReason: undefined,
  cancelSent: false,
  ...over,
});
const check = (x: Partial<CompletionCheck> = {}): CompletionCheck => ({
  activity_id: '7',
  attempt: 2,
  resynced: true,
  listedInResync: false,
  task: sent(),
  closedAs: undefined,
  verdict: undefined,
  ...x,
});
const ok = (output_refs: Record<string, string>) => ({ ok: true as const, output_refs, metadata_json: '' });

describe('completionDecision', () => {
  test('takes the assigned attempt, and a lower one as the same run answering before a re-offer', () => {
    expect(completionDecision(check())).toEqual({ kind: 'take', attempt: 2, assignedHere: true });
    expect(completionDecision(check({ attempt: 1 }))).toEqual({ kind: 'take', attempt: 2, assignedHere: true });
    expect(completionDecision(check({ task: sent({ stage: 'reserved' }) }))).toMatchObject({ kind: 'take' });
  });

  test("a re-offer with attempt 0 (a record rebuilt from chain, no attempt history) takes the run's own attempt", () => {
    const rebuilt = sent({ task: { ...sent().task, attempt: 0, reoffer: true } });
    expect(completionDecision(check({ task: rebuilt, attempt: 1 }))).toEqual({
      kind: 'take',
      attempt: 1,
      assignedHere: true,
    });
  });

  test('takes a Completion an earlier wcp assigned when the Resync listed it', () => {
    expect(completionDecision(check({ task: undefined, listedInResync: true, attempt: 5 }))).toEqual({
      kind: 'take',
      attempt: 5,
      assignedHere: false,
    });
  });

  test('refuses before Resync, a higher attempt, duplicates, late and unknown ones, each with its code', () => {
    const d = (x: Partial<CompletionCheck>) => completionDecision(check(x));
    expect(d({ resynced: false })).toMatchObject({ kind: 'refuse', code: 'BAD_MESSAGE', held: true });
    expect(d({ attempt: 3 })).toMatchObject({ kind: 'refuse', code: 'WRONG_ATTEMPT', held: true, attempt: 2 });
    expect(d({ task: undefined, closedAs: 'completed' })).toMatchObject({ code: 'DUPLICATE', held: false });
    expect(d({ task: undefined, closedAs: 'expired' })).toMatchObject({
      code: 'NOT_HELD',
      reason: 'late Completion (task already expired)',
    });
    expect(d({ task: undefined })).toMatchObject({ kind: 'refuse', code: 'NOT_HELD', held: false });
  });

  test('a Completion sent again is answered from the verdict memory', () => {
    const v = { executorAttempt: 2, attempt: 2 };
    expect(completionDecision(check({ task: undefined, verdict: { ...v, state: 'decided', accepted: true } }))).toEqual(
      { kind: 'resend' },
    );
    expect(completionDecision(check({ task: undefined, verdict: { ...v, state: 'forwarded' } }))).toMatchObject({
      kind: 'ignore',
    });
  });
});

describe('outputProblem', () => {
  const declared = [
    { name: 'video', key: 'video.mp4', contentType: 'video/mp4', required: true },
    { name: 'log', key: 'log.txt', contentType: 'text/plain', required: false },
  ];

  test('accepts outputs in the activity namespace with every required declared output', () => {
    expect(outputProblem('7', ok({ video: 'blob:7/video.mp4' }), declared)).toBeUndefined();
    expect(outputProblem('7', { ok: false, code: 'X', message: '', retryable: false }, declared)).toBeUndefined();
  });

  test("refuses another activity's namespace (inputs included), non-blob refs and missing declared outputs", () => {
    expect(outputProblem('7', ok({ video: 'blob:3/raw.mp4' }), undefined)).toContain('outside');
    expect(outputProblem('7', ok({ video: 's3://b/k' }), undefined)).toContain('not a blob reference');
    expect(outputProblem('7', ok({ log: 'blob:7/log.txt' }), declared)).toContain('"video"');
    // Without the activity type (an earlier wcp's task), only the refs are checked.
    expect(outputProblem('7', ok({}), undefined)).toBeUndefined();
  });
});
