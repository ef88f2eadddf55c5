import { describe, expect, test } from 'bun:test';
import type { TaskSpec } from './messages.ts';
import { type InflightTask, createTaskTable } from './task-table.ts';

const entry = (id: string): InflightTask => ({
  task: {
    activity_id: id,
    activity_type: 't',
    input_ref: 'json:{}',
    queue_name: 'q',
    deadline_unix_ms: 0,
    attempt: 1,
  } satisfies TaskSpec,
  stage: 'sent',
  inputRefs: new Set(),
  cancelReason: undefined,
  cancelSent: false,
});

describe('task table', () => {
  test('close takes a task out of flight and remembers how; release forgets it', () => {
    const t = createTaskTable();
    t.add(entry('a'));
    t.add(entry('b'));
    expect(t.size).toBe(2);
    t.close('a', 'completed');
    t.release('b');
    expect(t.size).toBe(0);
    expect(t.closedAs('a')).toBe('completed');
    expect(t.closedAs('b')).toBeUndefined();
  });

  test('the closed memory keeps at least one full generation, then drops the oldest', () => {
    const t = createTaskTable(3);
    for (const id of ['1', '2', '3', '4', '5']) t.close(id, 'completed');
    // '1'..'3' filled the first generation and became the old one; '4', '5' are young.
    for (const id of ['1', '2', '3', '4', '5']) expect(t.closedAs(id)).toBe('completed');
    t.close('6', 'lost');
    // The young generation filled again: '1'..'3' are dropped, the last three closes are kept.
    expect(['1', '2', '3'].map((id) => t.closedAs(id))).toEqual([undefined, undefined, undefined]);
    expect(['4', '5', '6'].map((id) => t.closedAs(id))).toEqual(['completed', 'completed', 'lost']);
  });
});
