import { describe, expect, test } from 'bun:test';
import { type CompletionMessage, completionProblem } from './completion.ts';
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
const ok = (output_refs: Record<string, string>, attempt = 2): CompletionMessage => ({
  kind: 'completion',
  activity_id: '7',
  attempt,
  result: { ok: true, output_refs, metadata_json: '' },
});

describe('completionProblem', () => {
  test('accepts a completion of the assigned attempt with outputs in its namespace or its inputs', () => {
    const completion = ok({ video: 'blob:7/video.mp4', raw: 'blob:3/raw.mp4' });
    expect(completionProblem({ completion, resynced: true, task: sent(), closedAs: undefined })).toBeUndefined();
  });

  test('refuses before Resync, unsent, duplicate, late, foreign and wrong-attempt completions', () => {
    const completion = ok({});
    const p = (x: Partial<Parameters<typeof completionProblem>[0]>) =>
      completionProblem({ completion, resynced: true, task: sent(), closedAs: undefined, ...x });
    expect(p({ resynced: false })).toBe('Completion before Resync');
    expect(p({ task: sent({ stage: 'reserved' }) })).toBe('Completion for an activity not yet assigned');
    expect(p({ task: undefined, closedAs: 'completed' })).toBe('duplicate Completion');
    expect(p({ task: undefined, closedAs: 'expired' })).toBe('late Completion (task already expired)');
    expect(p({ task: undefined })).toBe('Completion for an activity not assigned to this executor');
    expect(p({ completion: ok({}, 1) })).toBe('Completion for attempt 1, assigned attempt 2');
  });

  test("refuses an output in another activity's namespace that is not one of its inputs", () => {
    const completion = ok({ stolen: 'blob:8/video.mp4' });
    expect(completionProblem({ completion, resynced: true, task: sent(), closedAs: undefined })).toContain(
      'outside the activity',
    );
  });
});
