/**
 * Flow control: how many more assignments the supervisor may send, and draining.
 *
 * Invariant: assignments written ≤ the executor's credits, adjusted for assignments it had not yet seen when it
 * last counted (its CapacityUpdate says how many it received) and for those being presigned right now; and
 * in-flight ≤ maxInflight. The supervisor learns the figure from `credits` events, sent only when it differs from
 * what the supervisor believes: it counts one credit down for each `assign` it sends, so the bridge does the same
 * on receiving one (`onAssign`) and stays silent about drops the supervisor already made. Each event carries
 * `assigns_seen`, so a supervisor can also discount its assigns that crossed the event on the port.
 */
import type { Logger } from '../internal/logger.ts';
import type { BridgeEvents } from './events.ts';
import type { BridgeState } from './messages.ts';

/** The per-connection counters behind the credit figure. */
export interface FlowCounters {
  /** The executor's free slots as of its last CapacityUpdate (or the Resync's estimate). */
  credits: number;
  /** Assignments written on this connection. */
  sent: number;
  /** `assignments_received` of the executor's last CapacityUpdate. */
  receivedAtUpdate: number;
  /** Assignments being prepared (presigning), not yet written. */
  reserved: number;
}

/** min(executor credits net of unseen and reserved assignments, maxInflight − in flight); 0 unless ready. */
export function availableCredits(p: {
  state: BridgeState | 'idle';
  draining: boolean;
  conn: FlowCounters | undefined;
  inFlight: number;
  maxInflight: number;
}): number {
  if (p.state !== 'ready' || p.draining || p.conn === undefined) return 0;
  const exec = p.conn.credits - (p.conn.sent - p.conn.receivedAtUpdate) - p.conn.reserved;
  return Math.max(0, Math.min(exec, p.maxInflight - p.inFlight));
}

export interface FlowOptions {
  maxInflight: number;
  connection: { state(): BridgeState | 'idle'; current(): FlowCounters | undefined };
  tasks: { readonly size: number };
  /** Work that still ends in an event although it left the task table (Completions whose outputs are checked). */
  busy?: () => number;
  events: BridgeEvents;
  logger: Logger;
}

/** Credits and draining for one bridge. */
export interface Flow {
  available(): number;
  /** Sends `credits` if the figure differs from the supervisor's view (the last one sent, less assigns since). */
  emitCredits(): void;
  /** An `assign` command arrived: the supervisor took one credit for it (re-offers take none). */
  onAssign(reoffer: boolean): void;
  draining(): boolean;
  /** Stops offering credits; `drained` follows once nothing is in flight. */
  drain(): void;
  /** Sends `drained` (once) when draining and nothing is in flight or being checked. */
  checkDrained(): void;
}

export function createFlow(opts: FlowOptions): Flow {
  const { connection, tasks } = opts;
  const { send } = opts.events;
  let draining = false;
  let drainedSent = false;
  /** The supervisor's view: the last figure sent, less the assigns received since. */
  let lastCredits = -1;
  let assignsSeen = 0;

  const available = (): number =>
    availableCredits({
      state: connection.state(),
      draining,
      conn: connection.current(),
      inFlight: tasks.size,
      maxInflight: opts.maxInflight,
    });

  function emitCredits(): void {
    const a = available();
    if (a !== lastCredits) {
      lastCredits = a;
      send({ type: 'credits', available: a, assigns_seen: assignsSeen });
    }
  }

  function onAssign(reoffer: boolean): void {
    if (reoffer) return;
    assignsSeen += 1;
    if (lastCredits > 0) lastCredits -= 1;
  }

  function checkDrained(): void {
    if (draining && !drainedSent && tasks.size === 0 && (opts.busy?.() ?? 0) === 0) {
      drainedSent = true;
      opts.logger.info('Executor bridge drained.');
      send({ type: 'drained' });
    }
  }

  function drain(): void {
    if (draining || connection.state() === 'stopped') return;
    draining = true;
    opts.logger.info('Executor bridge draining.', { in_flight: tasks.size });
    emitCredits();
    checkDrained();
  }

  return { available, emitCredits, onAssign, draining: () => draining, drain, checkDrained };
}
