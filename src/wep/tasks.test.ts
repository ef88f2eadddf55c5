import { describe, expect, test } from 'bun:test';
import { createLogger } from '../internal/logger.ts';
import type { ExecutorMessageWire, TaskAssignmentWire } from '../taskstream/protocol.ts';
import { parseActivitySpec } from './spec.ts';
import { createTaskRunner } from './tasks.ts';

const SPEC = 'name: t.x\nversion: 1\noutputs: { r: { key: r.bin } }\n';

/** A runner whose stream is a list: `connected` and `acks` say what the current wcp is. */
function runner() {
  const wire = { connected: true, acks: true, sent: [] as ExecutorMessageWire[], runs: 0 };
  const tasks = createTaskRunner({
    specs: new Map([['t.x', parseActivitySpec(SPEC, 't.x')]]),
    handlers: {
      't.x': async (ctx) => {
        wire.runs += 1;
        return { r: ctx.outputRef('r') };
      },
    },
    concurrency: 2,
    logger: createLogger('t', { level: 'error', json: true, write: () => {} }),
    accepting: () => true,
    send: (msg) => {
      if (!wire.connected) return false;
      wire.sent.push(msg);
      return true;
    },
    acksCompletions: () => wire.acks,
    capacityChanged: () => {},
    requestStorage: () => Promise.reject(new Error('no storage')),
  });
  return { tasks, wire };
}

const assignment = (attempt: number): TaskAssignmentWire => ({
  activity_id: '9',
  activity_type: 't.x',
  attempt,
  input_ref: 'json:{}',
  input_json: '{}',
  input_urls: {},
  output_urls: {},
  deadline_unix_ms: 0,
  workflow_instance: '',
});
const completions = (sent: ExecutorMessageWire[]) =>
  sent.flatMap((m) => ('completion' in m ? [{ id: m.completion.activity_id, attempt: m.completion.attempt }] : []));

describe('task runner', () => {
  test('a finished, unacknowledged task re-offered sends its Completion again under the new attempt; no second run', async () => {
    const { tasks, wire } = runner();
    tasks.onAssignment(assignment(1));
    while (tasks.runningCount() > 0) await Bun.sleep(2);
    expect(completions(wire.sent)).toEqual([{ id: '9', attempt: 1 }]);
    expect(tasks.heldIds()).toEqual(['9']); // written, not yet acknowledged
    tasks.onAssignment(assignment(2));
    await Bun.sleep(20);
    expect(wire.runs).toBe(1);
    expect(completions(wire.sent)).toEqual([
      { id: '9', attempt: 1 },
      { id: '9', attempt: 2 },
    ]);
    // An ack of the older attempt is stale; the one for the held attempt releases it.
    tasks.onAck({ activity_id: '9', attempt: 1, accepted: true, code: '', reason: '' });
    expect(tasks.heldIds()).toEqual(['9']);
    tasks.onAck({ activity_id: '9', attempt: 2, accepted: true, code: '', reason: '' });
    expect(tasks.heldIds()).toEqual([]);
  });

  test('held Completions are flushed on every new stream until acked; against an older wcp, once written', async () => {
    const { tasks, wire } = runner();
    wire.connected = false;
    tasks.onAssignment(assignment(1));
    while (tasks.runningCount() > 0) await Bun.sleep(2);
    const write = (m: ExecutorMessageWire) => {
      wire.sent.push(m);
      return true;
    };
    tasks.flushPending(write, true);
    tasks.flushPending(write, true);
    expect(completions(wire.sent).length).toBe(2);
    expect(tasks.pendingIds()).toEqual(['9']);
    tasks.flushPending(write, false);
    expect(tasks.pendingIds()).toEqual([]);
  });
});
