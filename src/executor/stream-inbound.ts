/**
 * The TaskStream's inbound side: everything the executor sends, in order (the thread messages between the
 * supervisor and the bridge are `messages.ts`). Each message is validated (`parseExecutorMessage`) and checked
 * against the connection's handshake stage and the task table before anything reaches the supervisor. The stream
 * must open with Hello; a refused message is reported through `reject` and otherwise ignored.
 */
import type { Logger } from '../internal/logger.ts';
import { type ExecutorMessage, parseExecutorMessage } from '../taskstream/validate.ts';
import type { BridgeCompletions } from './completion.ts';
import { type Conn, type Connection, protocolError } from './connection.ts';
import type { Flow } from './credits.ts';
import type { BridgeEvents } from './events.ts';
import type { TaskTable } from './task-table.ts';

export interface StreamInboundOptions {
  connection: Connection;
  tasks: TaskTable;
  flow: Flow;
  completions: BridgeCompletions;
  events: BridgeEvents;
  logger: Logger;
  onStorageRequest(c: Conn, m: Extract<ExecutorMessage, { kind: 'storage_request' }>): void;
}

/** Builds the handler of one decoded executor message on connection `c`. */
export function createStreamInbound(opts: StreamInboundOptions): (c: Conn, raw: unknown) => void {
  const { connection, tasks, flow, completions, events } = opts;
  const { reject, send } = events;
  const log = opts.logger;

  /**
   * The executor's Resync: of the tasks sent, those it lists keep running and the others are lost (the
   * supervisor re-offers them), with how the previous stream ended (`lost_cause`: graceful or crash). Everything it lists is remembered for this connection: Completions for those are
   * taken even when an earlier wcp assigned them, and the supervisor hears of them all (`held_activity_ids`) to
   * re-offer the ones still running. Reported whenever this is not the first handshake, something was in flight,
   * or the executor holds anything.
   */
  function onResync(c: Conn, reported: string[]): void {
    c.resynced = true;
    c.heldAtResync = new Set(reported);
    const running: string[] = [];
    const lost: string[] = [];
    for (const [id, t] of tasks.entries()) {
      if (t.stage !== 'sent') continue;
      if (c.heldAtResync.has(id)) running.push(id);
      else {
        lost.push(id);
        tasks.close(id, 'lost');
      }
    }
    // Initial credits until the first CapacityUpdate: free slots net of what the executor holds.
    c.credits = Math.max(0, (c.caps?.max_concurrency ?? 0) - reported.length);
    if (connection.everReady() || running.length > 0 || lost.length > 0 || reported.length > 0) {
      const cause = lost.length > 0 ? (connection.lastReadyEnd() ?? 'crash') : undefined;
      log.info('Resynced with the executor.', {
        running: running.length,
        lost: lost.length,
        held: reported.length,
        ...(cause !== undefined ? { lost_cause: cause } : {}),
      });
      send({
        type: 'resync',
        running_activity_ids: running,
        lost_activity_ids: lost,
        held_activity_ids: reported,
        // Tasks are sent only on a ready connection: the last one that ended is the one they were lost with.
        ...(cause !== undefined ? { lost_cause: cause } : {}),
      });
    }
    connection.maybeReady(c);
    for (const id of running) {
      const t = tasks.get(id);
      if (t?.cancelReason !== undefined && !t.cancelSent) {
        t.cancelSent = connection.write(c, { cancel: { activity_id: id, reason: t.cancelReason } });
      }
    }
    flow.checkDrained();
  }

  return function onMessage(c, raw) {
    if (connection.current() !== c || c.fatal !== undefined) return;
    const parsed = parseExecutorMessage(raw);
    if (!parsed.ok) {
      if (c.hello !== undefined && parsed.activity_id !== undefined && memberOf(raw) === 'completion') {
        // A Completion that fails validation still ends its run: refused (BAD_MESSAGE), never left hanging.
        completions.onMalformed(c, parsed.activity_id, attemptOf(raw), parsed.reason);
        return;
      }
      reject(parsed.reason, parsed.activity_id);
      if (c.hello === undefined) {
        connection.teardown(
          c,
          `first executor message invalid: ${parsed.reason}`,
          protocolError(`Executor sent an invalid first message: ${parsed.reason}`),
        );
      }
      return;
    }
    const m = parsed.msg;
    if (c.hello === undefined) {
      if (m.kind !== 'hello') {
        reject(`expected Hello first, got ${m.kind}`);
        connection.teardown(
          c,
          'executor did not start with Hello',
          protocolError(`Executor did not start the stream with Hello (got ${m.kind}).`),
        );
        return;
      }
      connection.onHello(c, m);
      return;
    }
    const ready = connection.state() === 'ready';
    switch (m.kind) {
      case 'hello':
        return reject('unexpected second Hello');
      case 'capabilities':
        c.caps = m;
        if (ready) {
          log.info('Executor capabilities changed.', {
            activity_types: m.activity_types.join(','),
            max_concurrency: m.max_concurrency,
          });
          flow.emitCredits();
        } else connection.maybeReady(c);
        return;
      case 'resync':
        if (c.resynced || c.caps === undefined)
          return reject(c.resynced ? 'unexpected Resync after handshake' : 'Resync before Capabilities');
        onResync(c, m.running_activity_ids);
        return;
      case 'capacity_update':
        if (m.assignments_received > c.sent)
          return reject(`capacity_update counts ${m.assignments_received} assignments, only ${c.sent} sent`);
        c.credits = m.credits;
        c.receivedAtUpdate = m.assignments_received;
        flow.emitCredits();
        return;
      case 'pong':
        if (!connection.onPong(c, m.nonce)) reject(`Pong with unexpected nonce ${m.nonce}`);
        return;
      case 'progress': {
        if (!ready) return reject('Progress before the handshake finished', m.activity_id);
        const t = tasks.get(m.activity_id);
        if (t?.stage !== 'sent') return reject('Progress for an activity not assigned to this executor', m.activity_id);
        send({ type: 'progress', activity_id: m.activity_id, fraction: m.fraction, message: m.message });
        return;
      }
      case 'completion':
        completions.onCompletion(c, m);
        return;
      case 'storage_request':
        if (!ready) return reject('StorageRequest before the handshake finished', m.activity_id);
        opts.onStorageRequest(c, m);
        return;
    }
  };
}

function memberOf(raw: unknown): unknown {
  return raw !== null && typeof raw === 'object' ? (raw as { msg?: unknown }).msg : undefined;
}

/** The attempt of an undecodable Completion, when it is a readable uint32. */
function attemptOf(raw: unknown): number | undefined {
  const body = (raw as { completion?: { attempt?: unknown } }).completion;
  const a = body !== null && typeof body === 'object' ? body.attempt : undefined;
  return typeof a === 'number' && Number.isInteger(a) && a >= 0 && a <= 0xffffffff ? a : undefined;
}
