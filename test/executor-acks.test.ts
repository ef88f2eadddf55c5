/**
 * Finished work is never redone and never lost between the bridge and the executor: Completions for activities an
 * earlier wcp assigned are taken, every Completion is acknowledged (the SDK keeps it until then and re-sends it on
 * the next stream), outputs are checked before anything is forwarded, storage availability is reported, re-offers
 * keep the one run, and credits never make a supervisor overshoot. Real gRPC on loopback, the real SDK, a scripted
 * executor for what the SDK would never send, and a real HTTP object store behind a fake broker.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { MessageChannel } from 'node:worker_threads';
import type { StorageBrokerLike } from '../src/executor/bridge.ts';
import type { ExecutorEvent, TaskSpec } from '../src/executor/messages.ts';
import { runExecutorWorker } from '../src/executor/worker.ts';
import { WcpError } from '../src/internal/errors.ts';
import { createLogger } from '../src/internal/logger.ts';
import {
  bridgeFor,
  captureLogger,
  cleanups,
  events,
  forId,
  isState,
  isType,
  runCleanups,
  scriptedExecutor,
  sdkExecutor,
  task,
  workerOptions,
} from './fixtures/bridge-kit.ts';
import { untilTrue } from '../src/internal/testing/until.ts';

afterEach(runCleanups, 60_000);

/** A real HTTP object store (PUT, GET, HEAD; 404 when missing) and a broker that presigns into it. */
function objectStore(opts: { down?: (activityId: string) => boolean } = {}) {
  const blobs = new Map<string, string>();
  const http = Bun.serve({
    port: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      if (req.method === 'PUT') {
        blobs.set(path, await req.text());
        return new Response('ok');
      }
      const b = blobs.get(path);
      return b !== undefined ? new Response(b) : new Response('not found', { status: 404 });
    },
  });
  cleanups.push(() => http.stop(true));
  const broker: StorageBrokerLike = {
    presign: async (p) => {
      if (opts.down?.(p.activityId)) throw new WcpError('STORAGE_UNAVAILABLE', 'broker down', { retryable: true });
      return {
        url: `http://127.0.0.1:${http.port}/${p.activityId}/${p.key}`,
        method: p.method,
        expiresAtMs: Date.now() + 60_000,
        headers: {},
      };
    },
    close: () => {},
  };
  return { blobs, broker, put: (id: string, key: string) => blobs.set(`/${id}/${key}`, 'x') };
}

describe('completions across wcp lives', () => {
  test('a Completion an earlier wcp assigned is forwarded (assigned_here: false) and acked; a re-offer keeps the run', async () => {
    const ex = await scriptedExecutor({ auto: { types: ['test.sleep'], concurrency: 4, running: ['5551', '5552'] } });
    const ev = events();
    const bridge = bridgeFor(ex.port, ev);
    const resync = await ev.waitFor(isType('resync'));
    expect(resync).toEqual({
      type: 'resync',
      running_activity_ids: [],
      lost_activity_ids: [],
      held_activity_ids: ['5551', '5552'],
    });
    await ev.waitFor(isState('ready'));
    const call = ex.last();
    call.write({
      completion: { activity_id: '5551', attempt: 3, success: { output_refs: {}, metadata_json: '{"a":1}' } },
    });
    expect(await ev.waitFor(forId('completion', '5551'))).toEqual({
      type: 'completion',
      activity_id: '5551',
      attempt: 3,
      result: { ok: true, output_refs: {}, metadata_json: '{"a":1}' },
      assigned_here: false,
    });
    // Re-offering the finished one: refused as duplicate (its verdict is on its way), nothing sent.
    const spec = (id: string, attempt: number): TaskSpec => ({ ...task(10), activity_id: id, attempt, reoffer: true });
    await bridge.assign(spec('5551', 3));
    expect(await ev.waitFor(forId('assignRejected', '5551'))).toMatchObject({ reason: 'duplicate', retryable: false });
    bridge.ackCompletion({ activity_id: '5551', attempt: 3, accepted: true });
    expect(await ex.waitAck('5551')).toMatchObject({ attempt: 3, accepted: true });

    // Re-offering the running one: registered and sent under the new attempt, without taking a credit.
    const creditsBefore = ev.list.filter(isType('credits')).at(-1);
    await bridge.assign(spec('5552', 2));
    await ev.waitFor(forId('accepted', '5552'));
    const sentToExecutor = () => ex.received.filter((m) => m.msg === 'task_assignment').map((m) => m.task_assignment);
    await untilTrue(() => sentToExecutor().length > 0, 'the re-offer to reach the executor');
    expect(sentToExecutor()).toEqual([expect.objectContaining({ activity_id: '5552', attempt: 2 })]);
    expect(ev.list.filter(isType('credits')).at(-1)?.assigns_seen).toBe(creditsBefore?.assigns_seen);
    // The executor answers before it saw the new number: the same run, forwarded under the re-offer's attempt,
    // acked under the executor's own.
    call.write({
      completion: {
        activity_id: '5552',
        attempt: 1,
        failure: { code: 'HANDLER_ERROR', message: 'x', retryable: true },
      },
    });
    expect(await ev.waitFor(forId('completion', '5552'))).toMatchObject({ attempt: 2 });
    expect((await ev.waitFor(forId('completion', '5552'))).assigned_here).toBeUndefined();
    bridge.ackCompletion({ activity_id: '5552', attempt: 2, accepted: false, code: 'NOT_HELD', reason: 'r' });
    expect(await ex.waitAck('5552')).toMatchObject({ attempt: 1, accepted: false, code: 'NOT_HELD' });
  });

  test('SDK: a Completion whose stream closed right after the write reaches the next wcp, once acked it is gone', async () => {
    const { exec, port, stats } = await sdkExecutor(2);
    // The first wcp dies the moment the Completion arrives: it never acknowledges it.
    const ev1 = events();
    let first: ReturnType<typeof bridgeFor> | undefined;
    first = bridgeFor(port, {
      ...ev1,
      emit: (e: ExecutorEvent) => {
        if (e.type === 'completion') void first?.stop();
        return ev1.emit(e);
      },
    });
    await ev1.waitFor(isState('ready'));
    const t = task(20);
    await first.assign(t);
    await ev1.waitFor(forId('completion', t.activity_id));
    await untilTrue(() => !exec.status().connected, 'the stream to close');
    expect(exec.status().pending_completions).toEqual([t.activity_id]);

    // The next wcp: listed in the Resync, re-sent, forwarded as an earlier life's; nothing runs again.
    const ev2 = events();
    const second = bridgeFor(port, ev2);
    expect((await ev2.waitFor(isType('resync'))).held_activity_ids).toEqual([t.activity_id]);
    const again = await ev2.waitFor(forId('completion', t.activity_id));
    expect(again).toMatchObject({ attempt: 1, assigned_here: false, result: { ok: true } });
    // Unacked, it stays: a reconnect re-sends it again.
    expect(exec.status().pending_completions).toEqual([t.activity_id]);
    second.ackCompletion({ activity_id: t.activity_id, attempt: 1, accepted: true });
    await untilTrue(() => exec.status().pending_completions.length === 0, 'the ack to reach the executor');
    await second.stop();

    const ev3 = events();
    bridgeFor(port, ev3);
    await ev3.waitFor(isState('ready'));
    await Bun.sleep(100);
    expect(ev3.list.some((e) => e.type === 'completion' || e.type === 'resync')).toBe(false);
    expect(stats.calls).toBe(1);
  });

  test('SDK: a rejected ack drops the Completion and is logged with its code', async () => {
    const log = captureLogger('wep');
    const { exec, port } = await sdkExecutor(1, { logger: log.logger });
    const ev = events();
    const bridge = bridgeFor(port, ev);
    await ev.waitFor(isState('ready'));
    const t = task(0);
    await bridge.assign(t);
    await ev.waitFor(forId('completion', t.activity_id));
    expect(exec.status().pending_completions).toEqual([t.activity_id]);
    bridge.ackCompletion({
      activity_id: t.activity_id,
      attempt: 1,
      accepted: false,
      code: 'WRONG_ATTEMPT',
      reason: 'r',
    });
    await untilTrue(() => exec.status().pending_completions.length === 0, 'the rejection to drop the Completion');
    expect(log.captured.lines).toContainEqual(
      expect.objectContaining({ level: 'warn', activity_id: t.activity_id, code: 'WRONG_ATTEMPT' }),
    );
  });

  test('SDK: a re-offer of a running task keeps the one run and answers with the new attempt', async () => {
    const { exec, port, stats } = await sdkExecutor(1);
    const ev1 = events();
    const first = bridgeFor(port, ev1);
    await ev1.waitFor(isState('ready'));
    const t = task(400);
    await first.assign(t);
    await untilTrue(() => exec.status().running.length === 1, 'the run to start');
    await first.stop();
    const ev2 = events();
    const second = bridgeFor(port, ev2);
    expect((await ev2.waitFor(isType('resync'))).held_activity_ids).toEqual([t.activity_id]);
    await ev2.waitFor(isState('ready'));
    await second.assign({ ...t, attempt: 2, reoffer: true });
    await ev2.waitFor(forId('accepted', t.activity_id));
    const done = await ev2.waitFor(forId('completion', t.activity_id));
    expect({ attempt: done.attempt, ok: done.result.ok }).toEqual({ attempt: 2, ok: true });
    expect(stats.calls).toBe(1);
    expect(ev2.list.some(isType('assignRejected'))).toBe(false);
  });
});

describe('outputs checked before forwarding', () => {
  const outputs = [
    {
      activity_type: 'test.sleep',
      outputs: [
        { name: 'out', key: 'out.bin', content_type: 'application/octet-stream' },
        { name: 'log', key: 'log.txt', content_type: 'text/plain', optional: true },
      ],
    },
  ];

  test('a missing declared output and an object never uploaded: OUTPUT_INVALID to both sides; storage down does not block', async () => {
    let brokerDownFor = '';
    const store = objectStore({ down: (id) => id === brokerDownFor });
    const ex = await scriptedExecutor({ auto: { types: ['test.sleep'], concurrency: 8, outputs } });
    const ev = events();
    const bridge = bridgeFor(ex.port, ev, { broker: store.broker, storageProbeBaseMs: 20 });
    await ev.waitFor(isState('ready'));
    expect(await ev.waitFor(isType('storage'))).toEqual({ type: 'storage', available: true });
    const call = ex.last();
    const complete = (id: string, refs: Record<string, string>) =>
      call.write({ completion: { activity_id: id, attempt: 1, success: { output_refs: refs, metadata_json: '' } } });
    const assigned = async () => {
      const t = task(0);
      await bridge.assign(t);
      await ev.waitFor(forId('accepted', t.activity_id));
      return t.activity_id;
    };

    // Uploaded, with the optional output left out: forwarded.
    const good = await assigned();
    store.put(good, 'out.bin');
    complete(good, { out: `blob:${good}/out.bin` });
    expect(await ev.waitFor(forId('completion', good))).toMatchObject({ result: { ok: true } });

    // The required declared output is missing.
    const missing = await assigned();
    store.put(missing, 'log.txt');
    complete(missing, { log: `blob:${missing}/log.txt` });
    const r1 = await ev.waitFor(forId('completionRejected', missing));
    expect(r1).toMatchObject({ code: 'OUTPUT_INVALID', attempt: 1 });
    expect(r1.reason).toContain('"out"');
    expect(await ex.waitAck(missing)).toMatchObject({ accepted: false, code: 'OUTPUT_INVALID' });

    // Named, but never uploaded.
    const ghost = await assigned();
    complete(ghost, { out: `blob:${ghost}/out.bin` });
    const r2 = await ev.waitFor(forId('completionRejected', ghost));
    expect(r2).toMatchObject({ code: 'OUTPUT_INVALID' });
    expect(r2.reason).toContain('never uploaded');
    expect(await ex.waitAck(ghost)).toMatchObject({ accepted: false, code: 'OUTPUT_INVALID' });

    // Storage cannot tell (the broker is down for it): forwarded, and storage reported down, then up again.
    const blind = await assigned();
    brokerDownFor = blind;
    const from = ev.list.length;
    complete(blind, { out: `blob:${blind}/out.bin` });
    expect(await ev.waitFor(forId('completion', blind))).toMatchObject({ result: { ok: true } });
    expect(await ev.waitFor(isType('storage'), 5000, from)).toMatchObject({ available: false });
    await ev.waitFor((e): e is ExecutorEvent => e.type === 'storage' && e.available, 5000, from);

    for (const id of [missing, ghost]) expect(ev.list.some(forId('completion', id))).toBe(false);
    expect(bridge.status().in_flight).toEqual([]);
  });

  test('storage down at start is reported, probed and reported back up', async () => {
    let down = true;
    const store = objectStore({ down: () => down });
    const { port } = await sdkExecutor(1);
    const ev = events();
    const bridge = bridgeFor(port, ev, { broker: store.broker, storageProbeBaseMs: 20 });
    const first = await ev.waitFor(isType('storage'));
    expect(first).toMatchObject({ available: false });
    expect(first.detail).toContain('broker down');
    await Bun.sleep(100);
    expect(ev.list.filter(isType('storage')).length).toBe(1); // one event per change, however many probes
    down = false;
    await ev.waitFor((e): e is ExecutorEvent => e.type === 'storage' && e.available, 5000);
    expect(bridge.status().storage_available).toBe(true);
  });
});

describe('credits', () => {
  /**
   * Runs 24 short tasks through a bridge worker on a 2-slot executor with max_inflight 16, driven by a simulated
   * supervisor that keeps its own credit count (one down per assign sent, reset by each `credits` event, `exact`:
   * discounting its assigns the event had not seen). Refused tasks are offered again; returns the refusals.
   */
  async function runSupervisor(exact: boolean): Promise<{ refused: string[]; peak: number }> {
    const { port, stats } = await sdkExecutor(2);
    const { port1, port2 } = new MessageChannel();
    const done = runExecutorWorker({
      port: port1,
      options: workerOptions(port, 16),
      logger: createLogger('w', { level: 'error', json: true, write: () => {} }),
    });
    const queue = Array.from({ length: 24 }, () => task(15));
    const byId = new Map(queue.map((t) => [t.activity_id, t]));
    let sent = 0;
    let credits = 0;
    let completed = 0;
    const refused: string[] = [];
    const pump = () => {
      while (credits > 0 && queue.length > 0) {
        const t = queue.shift() as TaskSpec;
        sent += 1;
        credits -= 1;
        port2.postMessage({ type: 'assign', task: t });
      }
    };
    port2.on('message', (m: ExecutorEvent) => {
      if (m.type === 'credits') {
        credits = exact ? m.available - (sent - (m.assigns_seen ?? sent)) : m.available;
        pump();
      } else if (m.type === 'assignRejected') {
        refused.push(m.reason);
        queue.push(byId.get(m.activity_id) as TaskSpec);
      } else if (m.type === 'completion') {
        completed += 1;
        port2.postMessage({ type: 'ackCompletion', activity_id: m.activity_id, attempt: m.attempt, accepted: true });
      }
    });
    await untilTrue(() => completed === 24, 'all 24 tasks to complete', 20_000);
    port2.postMessage({ type: 'stop' });
    await done;
    port2.close();
    return { refused, peak: stats.peak };
  }

  test('a supervisor following credits events never overshoots, even with max_inflight above the executor', async () => {
    expect(await runSupervisor(true)).toEqual({ refused: [], peak: 2 });
    // Today's supervisor (no assigns_seen): the bridge never echoes a drop it already counted.
    expect(await runSupervisor(false)).toEqual({ refused: [], peak: 2 });
  }, 60_000);
});
