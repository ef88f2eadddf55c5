/**
 * The executor bridge against real executors on loopback gRPC: the SDK executor in-process, the SDK executor as a
 * child process (killed, frozen with SIGSTOP), and a scripted executor (a real grpc-js server on the real service
 * definition whose messages the test writes by hand, including hostile ones).
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { MessageChannel } from 'node:worker_threads';
import fc from 'fast-check';
import type { ExecutorEvent } from '../src/executor/messages.ts';
import { runExecutorWorker } from '../src/executor/worker.ts';
import { unbatch } from '../src/internal/port-batch.ts';
import { createLogger } from '../src/internal/logger.ts';
import { untilTrue } from '../src/internal/testing/until.ts';
import type { ExecutorMessageWire } from '../src/taskstream/protocol.ts';
import { parseExecutorMessage } from '../src/taskstream/validate.ts';
import {
  bridgeFor,
  captureLogger,
  events,
  forId,
  isState,
  isType,
  runCleanups,
  scriptedExecutor,
  sdkExecutor,
  spawnChild,
  task,
  workerOptions,
} from './fixtures/bridge-kit.ts';

afterEach(runCleanups, 60_000);

// ---- tests ---------------------------------------------------------------------------------------------------

describe('executor bridge', () => {
  test('handshake: Hello → HelloAck → Capabilities + Resync → ready, with credits', async () => {
    const { port } = await sdkExecutor(3);
    const ev = events();
    const bridge = bridgeFor(port, ev);
    const ready = await ev.waitFor(isState('ready'));
    expect(ready.activity_types).toEqual(['test.sleep']);
    expect(ready.executor_id).toBeString();
    await ev.waitFor((e): e is ExecutorEvent => e.type === 'credits' && e.available === 3);
    expect(bridge.status().state).toBe('ready');
    // The first stream of a bridge with nothing in flight reports no resync.
    expect(ev.list.some((e) => e.type === 'resync')).toBe(false);
  });

  test('a protocol version mismatch gives one clear error on each side and no crash', async () => {
    const wepLog = captureLogger('wep');
    const { port } = await sdkExecutor(1, { protocolVersion: 2, logger: wepLog.logger });
    const ev = events();
    const bridgeLog = captureLogger('bridge');
    const bridge = bridgeFor(port, ev, { logger: bridgeLog.logger, reconnectBaseMs: 10, reconnectMaxMs: 30 });
    const backoff = await ev.waitFor(
      (e): e is Extract<ExecutorEvent, { type: 'state' }> =>
        e.type === 'state' && e.state === 'backoff' && e.error?.code === 'EXECUTOR_PROTOCOL',
    );
    expect(backoff.error?.message).toContain('executor');
    expect(backoff.error?.message).toContain('v2');
    // Let it retry several times: still one error line per side.
    await Bun.sleep(700);
    const connects = bridge.status().connects;
    expect(connects).toBeGreaterThan(2);
    const bridgeErrors = bridgeLog.captured.lines.filter((l) => l.level === 'error');
    expect(bridgeErrors.length).toBe(1);
    expect(bridgeErrors[0]?.msg).toContain('protocol mismatch');
    const wepErrors = wepLog.captured.lines.filter((l) => l.level === 'error');
    expect(wepErrors.length).toBe(1);
    expect(wepErrors[0]?.msg).toContain('refused');
    expect(ev.list.some(isState('ready'))).toBe(false);
    expect(bridge.status().last_error?.code).toBe('EXECUTOR_PROTOCOL');
  });

  test('credits: never more in flight than executor credits or maxInflight; the rest rejected retryably', async () => {
    const { port, stats } = await sdkExecutor(2);
    const ev = events();
    const bridge = bridgeFor(port, ev, { maxInflight: 8 });
    await ev.waitFor(isState('ready'));
    const tasks = Array.from({ length: 5 }, () => task(300));
    await Promise.all(tasks.map((t) => bridge.assign(t)));
    const accepted = ev.list.filter(isType('accepted')).map((e) => e.activity_id);
    const rejected = ev.list.filter(isType('assignRejected'));
    expect(accepted.length).toBe(2);
    expect(rejected.length).toBe(3);
    for (const r of rejected) expect(r).toMatchObject({ reason: 'no_credits', retryable: true });
    await Promise.all(accepted.map((id) => ev.waitFor(forId('completion', id))));
    expect(stats.peak).toBe(2);
    // Credits come back after completions; the rejected ones can now be offered.
    await ev.waitFor((e): e is ExecutorEvent => e.type === 'credits' && e.available === 2);

    // maxInflight caps below the executor's credits.
    const ev2 = events();
    const { port: port2 } = await sdkExecutor(5);
    const bridge2 = bridgeFor(port2, ev2, { maxInflight: 1 });
    await ev2.waitFor(isState('ready'));
    await bridge2.assign(task(200));
    await bridge2.assign(task(200));
    expect(ev2.list.filter(isType('accepted')).length).toBe(1);
    expect(ev2.list.filter(isType('assignRejected'))[0]).toMatchObject({ reason: 'no_credits', retryable: true });
    // Unsupported type and duplicate ids are refused without retry.
    await bridge2.assign(task(0, { activity_type: 'other.type' }));
    expect(ev2.list.filter(isType('assignRejected')).at(-1)).toMatchObject({
      reason: 'unsupported_type',
      retryable: false,
    });
  });

  test('completion forwarded once and acked; wrong-attempt, foreign, outside and late ones refused to both sides', async () => {
    const ex = await scriptedExecutor({ auto: { types: ['test.sleep'], concurrency: 4 } });
    const ev = events();
    const bridge = bridgeFor(ex.port, ev);
    await ev.waitFor(isState('ready'));
    const helloAck = ex.received.find((m) => m.msg === 'hello_ack')?.hello_ack as Record<string, unknown>;
    expect(helloAck.acks_completions).toBe(true);
    const t = task(0);
    await bridge.assign(t);
    await ev.waitFor(forId('accepted', t.activity_id));
    while (!ex.received.some((m) => m.msg === 'task_assignment')) await Bun.sleep(5);
    const assignment = ex.received.find((m) => m.msg === 'task_assignment')?.task_assignment as Record<string, unknown>;
    expect(assignment).toMatchObject({
      activity_id: t.activity_id,
      activity_type: 'test.sleep',
      input_json: '{"ms":0}',
      attempt: 1,
    });
    const call = ex.last();
    const okFor = (id: string, attempt = 1) => ({
      activity_id: id,
      attempt,
      success: { output_refs: { out: `blob:${id}/out.bin` }, metadata_json: '' },
    });
    // An attempt never assigned: refused, the task leaves flight, both sides told.
    call.write({ completion: okFor(t.activity_id, 2) });
    expect(await ev.waitFor(forId('completionRejected', t.activity_id))).toMatchObject({
      attempt: 1,
      code: 'WRONG_ATTEMPT',
    });
    expect(await ex.waitAck(t.activity_id)).toMatchObject({ attempt: 2, accepted: false, code: 'WRONG_ATTEMPT' });
    expect(bridge.status().in_flight).toEqual([]);

    // A good one: forwarded once; sent again it is answered from the verdict memory, never forwarded twice.
    const t1 = task(0);
    await bridge.assign(t1);
    await ev.waitFor(forId('accepted', t1.activity_id));
    call.write({ completion: okFor(t1.activity_id) });
    call.write({ completion: okFor(t1.activity_id) }); // verdict pending: ignored
    const done = await ev.waitFor(forId('completion', t1.activity_id));
    expect(done).toEqual({
      type: 'completion',
      activity_id: t1.activity_id,
      attempt: 1,
      result: { ok: true, output_refs: { out: `blob:${t1.activity_id}/out.bin` }, metadata_json: '' },
    });
    bridge.ackCompletion({ activity_id: t1.activity_id, attempt: 1, accepted: true });
    expect(await ex.waitAck(t1.activity_id)).toMatchObject({ attempt: 1, accepted: true, code: '' });
    call.write({ completion: okFor(t1.activity_id) }); // re-sent after the verdict: the same ack again
    expect(await ex.waitAck(t1.activity_id, 2)).toMatchObject({ attempt: 1, accepted: true });
    await Bun.sleep(50);
    expect(ev.list.filter(forId('completion', t1.activity_id)).length).toBe(1);

    // Never assigned and not in the Resync: NOT_HELD to the executor; the supervisor hears nothing to act on.
    call.write({ completion: okFor('999999') });
    call.write({ progress: { activity_id: '999999', fraction: 0.5, message: 'x' } });
    expect(await ex.waitAck('999999')).toMatchObject({ accepted: false, code: 'NOT_HELD' });
    const reasons = ev.list.filter(isType('rejected')).map((r) => r.reason);
    expect(reasons.filter((r) => r.includes('not assigned')).length).toBe(2);
    expect(ev.list.some(forId('completionRejected', '999999'))).toBe(false);

    // Outputs pointing into another activity's namespace: OUTPUT_INVALID to both sides.
    const t2 = task(0);
    await bridge.assign(t2);
    await ev.waitFor(forId('accepted', t2.activity_id));
    call.write({
      completion: {
        activity_id: t2.activity_id,
        attempt: 1,
        success: { output_refs: { out: 'blob:other/x' }, metadata_json: '' },
      },
    });
    expect(await ev.waitFor(forId('completionRejected', t2.activity_id))).toMatchObject({ code: 'OUTPUT_INVALID' });
    expect(await ex.waitAck(t2.activity_id)).toMatchObject({ accepted: false, code: 'OUTPUT_INVALID' });
    expect(ev.list.some(forId('completion', t2.activity_id))).toBe(false);

    // Bad metadata_json: BAD_MESSAGE, not left hanging.
    const t4 = task(0);
    await bridge.assign(t4);
    await ev.waitFor(forId('accepted', t4.activity_id));
    call.write({
      completion: {
        activity_id: t4.activity_id,
        attempt: 1,
        success: { output_refs: {}, metadata_json: '[1,2]' },
      },
    });
    expect(await ev.waitFor(forId('completionRejected', t4.activity_id))).toMatchObject({ code: 'BAD_MESSAGE' });
    expect(await ex.waitAck(t4.activity_id)).toMatchObject({ accepted: false, code: 'BAD_MESSAGE' });

    // The executor drops the stream and comes back without t3: it is reported lost, and its late completion refused.
    const got = ex.received.filter((m) => m.msg === 'task_assignment').length;
    call.write({ capacity_update: { credits: 4, assignments_received: got } });
    await ev.waitFor((e): e is ExecutorEvent => e.type === 'credits' && e.available > 0, 5000, ev.list.length - 1);
    const t3 = task(0);
    await bridge.assign(t3);
    await ev.waitFor(forId('accepted', t3.activity_id));
    const from = ev.list.length;
    call.end();
    const resync = await ev.waitFor(isType('resync'), 5000, from);
    expect(resync).toEqual({
      type: 'resync',
      running_activity_ids: [],
      lost_activity_ids: [t3.activity_id],
      held_activity_ids: [],
      lost_cause: 'graceful',
    });
    await ev.waitFor(isState('ready'), 5000, from);
    ex.last().write({
      completion: {
        activity_id: t3.activity_id,
        attempt: 1,
        failure: { code: 'HANDLER_ERROR', message: 'late', retryable: true },
      },
    });
    await ev.waitFor((e): e is ExecutorEvent => e.type === 'rejected' && e.reason.includes('late Completion'));
    expect(await ex.waitAck(t3.activity_id)).toMatchObject({ accepted: false, code: 'NOT_HELD' });
    expect(ev.list.some(forId('completion', t3.activity_id))).toBe(false);
  }, 20_000);

  test('executor restarts mid-task (SIGKILL): reconnect, resync reports the lost task, re-offer runs it', async () => {
    const first = await spawnChild(0);
    const ev = events();
    const bridge = bridgeFor(first.port, ev);
    await ev.waitFor(isState('ready'));
    const lost = task(30_000);
    await bridge.assign(lost);
    await ev.waitFor(forId('accepted', lost.activity_id));
    first.proc.kill('SIGKILL');
    await first.proc.exited;
    await ev.waitFor(isState('backoff'));
    const from = ev.list.length;
    await spawnChild(first.port);
    const resync = await ev.waitFor(isType('resync'), 10_000, from);
    expect(resync).toEqual({
      type: 'resync',
      running_activity_ids: [],
      lost_activity_ids: [lost.activity_id],
      held_activity_ids: [],
      lost_cause: 'crash',
    });
    await ev.waitFor(isState('ready'), 5000, from);
    expect(bridge.status().in_flight).toEqual([]);
    // The supervisor re-offers it; the new executor runs it to completion.
    const again = { ...lost, input_ref: 'json:{"ms":10}', attempt: 2 };
    await bridge.assign(again);
    const done = await ev.waitFor(forId('completion', lost.activity_id), 5000, from);
    expect(done.result.ok).toBe(true);
  }, 30_000);

  test('a stream the executor ends cleanly (status OK) loses its tasks as graceful; a failed one as a crash', async () => {
    const ex = await scriptedExecutor({ auto: { types: ['test.sleep'], concurrency: 2 } });
    const ev = events();
    const bridge = bridgeFor(ex.port, ev);
    await ev.waitFor(isState('ready'));
    const lose = async (end: () => void, t = task(30_000)) => {
      await bridge.assign(t);
      await ev.waitFor(forId('accepted', t.activity_id));
      const from = ev.list.length;
      end();
      // The next stream's Resync (the scripted executor holds nothing) reports it lost.
      return { resync: await ev.waitFor(isType('resync'), 5000, from), id: t.activity_id };
    };
    const graceful = await lose(() => ex.last().end());
    expect(graceful.resync).toMatchObject({ lost_activity_ids: [graceful.id], lost_cause: 'graceful' });
    await untilTrue(() => bridge.status().state === 'ready', 'ready again');
    const crash = await lose(() => ex.last().emit('error', { code: 14, details: 'executor crashed' }));
    expect(crash.resync).toMatchObject({ lost_activity_ids: [crash.id], lost_cause: 'crash' });
  }, 20_000);

  test('keepalive notices a frozen (SIGSTOP) executor, reconnects after SIGCONT, and the task survives', async () => {
    const child = await spawnChild(0);
    const ev = events();
    const bridge = bridgeFor(child.port, ev, {
      keepaliveIntervalMs: 100,
      keepaliveTimeoutMs: 500,
      handshakeTimeoutMs: 1000,
    });
    await ev.waitFor(isState('ready'));
    const t = task(1500);
    await bridge.assign(t);
    await ev.waitFor(forId('accepted', t.activity_id));
    const frozenAt = Date.now();
    child.proc.kill('SIGSTOP');
    const down = await ev.waitFor(
      (e): e is Extract<ExecutorEvent, { type: 'state' }> =>
        e.type === 'state' && e.state === 'backoff' && (e.detail ?? '').includes('keepalive'),
      5000,
    );
    expect(down.detail).toContain('no Pong');
    expect(Date.now() - frozenAt).toBeLessThan(500 + 100 + 1000); // timeout + interval + slack
    // While frozen, redials fail their handshake; nothing is reported lost.
    await Bun.sleep(1200);
    expect(ev.list.some(isType('resync'))).toBe(false);
    const from = ev.list.length;
    child.proc.kill('SIGCONT');
    const resync = await ev.waitFor(isType('resync'), 10_000, from);
    expect(resync.running_activity_ids).toEqual([t.activity_id]);
    expect(resync.lost_activity_ids).toEqual([]);
    const done = await ev.waitFor(forId('completion', t.activity_id), 10_000);
    expect(done.result.ok).toBe(true);
    expect(ev.list.filter(isType('completion')).length).toBe(1);
  }, 30_000);

  test('parseExecutorMessage never throws on arbitrary values', () => {
    fc.assert(
      fc.property(
        fc.anything({ withBigInt: true, withNullPrototype: true, withTypedArray: true }),
        fc.string(),
        (x, member) => {
          const r1 = parseExecutorMessage(x);
          const r2 = parseExecutorMessage({ msg: member, [member]: x });
          const r3 = parseExecutorMessage({ msg: 'completion', completion: x });
          return typeof r1.ok === 'boolean' && typeof r2.ok === 'boolean' && typeof r3.ok === 'boolean';
        },
      ),
      { numRuns: 2000 },
    );
    expect(
      parseExecutorMessage({ msg: 'progress', progress: { activity_id: '1', fraction: Number.NaN, message: '' } }).ok,
    ).toBe(false);
  });

  test('fuzz: hostile executor messages never crash the bridge nor complete an unassigned id', async () => {
    const ex = await scriptedExecutor({ auto: { types: ['test.sleep'], concurrency: 64 } });
    const ev = events();
    const bridge = bridgeFor(ex.port, ev, {
      maxInflight: 1000,
      reconnectBaseMs: 5,
      reconnectMaxMs: 20,
      maxMessageBytes: 64 * 1024,
    });
    await ev.waitFor(isState('ready'));
    const assigned = new Set<string>();

    const id = fc.oneof(
      fc.constantFrom('A', 'B'), // placeholders for the run's assigned ids
      fc.constantFrom('', '../x', 'a b', '0', '999999999', 'x'.repeat(200), '💥'),
      fc.string({ maxLength: 20 }),
    );
    const weird = fc.oneof(
      fc.string({ maxLength: 50 }),
      fc.double(),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.string({ minLength: 3000, maxLength: 5000 }),
    );
    const msg = fc.oneof(
      fc.record({ hello: fc.record({ executor_id: weird, executor_version: weird, protocol_version: fc.nat() }) }),
      fc.record({
        capabilities: fc.record({ activity_types: fc.array(weird, { maxLength: 4 }), max_concurrency: fc.nat() }),
      }),
      fc.record({ capacity_update: fc.record({ credits: fc.nat(), assignments_received: fc.nat() }) }),
      fc.record({
        progress: fc.record({
          activity_id: id,
          fraction: fc.oneof(fc.double(), fc.constant(Number.NaN), fc.constant(Number.POSITIVE_INFINITY)),
          message: weird,
        }),
      }),
      fc.record({
        completion: fc.record({
          activity_id: id,
          attempt: fc.oneof(fc.constant(1), fc.nat()),
          success: fc.record({
            output_refs: fc.dictionary(
              fc.string({ maxLength: 10 }),
              fc.oneof(fc.string(), fc.constant('blob:A/out.bin')),
            ),
            metadata_json: fc.oneof(fc.constant(''), fc.string(), fc.json()),
          }),
        }),
      }),
      fc.record({
        completion: fc.record({
          activity_id: id,
          attempt: fc.constant(1),
          failure: fc.record({
            code: fc.oneof(fc.constant('HANDLER_ERROR'), fc.string()),
            message: weird,
            retryable: fc.boolean(),
          }),
        }),
      }),
      fc.record({
        storage_request: fc.record({
          request_id: weird,
          activity_id: id,
          key: weird,
          method: fc.oneof(fc.constantFrom('GET', 'PUT'), fc.string()),
        }),
      }),
      fc.record({ pong: fc.record({ nonce: fc.nat() }) }),
      fc.record({ resync: fc.record({ running_activity_ids: fc.array(id, { maxLength: 5 }) }) }),
      fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)), // raw bytes: often undecodable
      fc.constant(Buffer.alloc(100 * 1024, 1)), // over maxMessageBytes
    );

    await fc.assert(
      fc.asyncProperty(fc.array(msg, { minLength: 1, maxLength: 12 }), async (msgs) => {
        await ev.waitFor(
          isState('ready'),
          5000,
          ev.list.findLastIndex((e) => e.type === 'state' && e.state !== 'ready') + 1,
        );
        const a = task(0);
        const b = task(0);
        await bridge.assign(a);
        await bridge.assign(b);
        for (const t of [a, b]) if (ev.list.some(forId('accepted', t.activity_id))) assigned.add(t.activity_id);
        const sub = (x: unknown): unknown =>
          JSON.parse(
            JSON.stringify(x, (_k, v) =>
              v === 'A'
                ? a.activity_id
                : v === 'B'
                  ? b.activity_id
                  : typeof v === 'string'
                    ? v.replaceAll('blob:A/', `blob:${a.activity_id}/`)
                    : v,
            ),
          );
        const call = ex.last();
        for (const m of msgs) {
          try {
            call.write(Buffer.isBuffer(m) ? m : (sub(m) as ExecutorMessageWire));
          } catch {
            /* the scripted server may refuse to serialize some shapes: fine */
          }
        }
        await Bun.sleep(20);
        const completions = ev.list.filter(isType('completion'));
        for (const c of completions) if (!assigned.has(c.activity_id) || c.result === undefined) return false;
        return new Set(completions.map((c) => c.activity_id)).size === completions.length;
      }),
      { numRuns: 60 },
    );
    // Still alive and serving: a fresh assignment completes normally.
    await ev.waitFor(
      isState('ready'),
      5000,
      ev.list.findLastIndex((e) => e.type === 'state' && e.state !== 'ready') + 1,
    );
    expect(['ready', 'connecting', 'handshaking', 'backoff']).toContain(bridge.status().state);
    expect(ev.list.some(isType('rejected'))).toBe(true);
  }, 60_000);

  for (const batchPort of [false, true])
    test(`runExecutorWorker maps port messages to the bridge and back, and resolves on stop (batchPort ${batchPort})`, async () => {
      const { port } = await sdkExecutor(2);
      const { port1, port2 } = new MessageChannel();
      const got: ExecutorEvent[] = [];
      port2.on('message', (m: unknown) => unbatch(m, (ev) => got.push(ev as ExecutorEvent)));
      const done = runExecutorWorker({
        port: port1,
        batchPort,
        options: workerOptions(port, 4),
        logger: createLogger('w', { level: 'error', json: true, write: () => {} }),
      });
      const waitGot = (pred: (m: ExecutorEvent) => boolean) =>
        untilTrue(
          () => got.some(pred),
          () => JSON.stringify(got),
          5000,
        );
      await waitGot((m) => m.type === 'state' && m.state === 'ready');
      const t = task(10);
      // Commands may come one by one or as a batch: the worker takes both (a bad one in a batch is ignored alone).
      if (batchPort)
        port2.postMessage({ type: 'wcp.batch', messages: [{ type: 'assign', task: t }, { type: 'bogus' }] });
      else {
        port2.postMessage({ type: 'assign', task: t });
        port2.postMessage({ type: 'bogus' });
      }
      await waitGot((m) => m.type === 'completion' && m.activity_id === t.activity_id);
      port2.postMessage({ type: 'drain' });
      await waitGot((m) => m.type === 'drained');
      port2.postMessage({ type: 'stop' });
      await done;
      await waitGot((m) => m.type === 'stopped');
      port2.close();
    });
});
