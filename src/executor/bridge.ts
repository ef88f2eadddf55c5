/**
 * The executor bridge: wcp's end of the TaskStream. Runs in a worker thread; talks to the supervisor only through
 * `emit` (see messages.ts) and is driven by `assign` / `cancel` / `drain` / `stop`. This file wires the parts:
 *
 * - connection.ts — dial, handshake, keepalive, reconnect backoff (the `BridgeState` machine);
 * - task-table.ts — the tasks in flight and the memory of recently closed ones;
 * - assignment.ts — checking, presigning (storage.ts) and writing assignments; cancels;
 * - stream-inbound.ts — validating and routing what the executor sends; completion.ts — judging Completions
 *   (output-check.ts: do the objects exist) and closing tasks; acks.ts — verdicts relayed as CompletionAcks;
 * - credits.ts — flow control and draining; events.ts — what goes to the supervisor;
 * - storage-health.ts — whether the storage service answers (`storage` events, probing while it does not).
 *
 * Invariants: assignments written ≤ executor credits (adjusted for assignments it has not yet seen) and
 * in-flight ≤ maxInflight; every executor message is validated and checked against the in-flight table before
 * anything is emitted; a Completion reaches the supervisor at most once per assignment, and every one the
 * executor sends is answered (the supervisor's verdict, or the bridge's refusal); nothing thrown escapes a stream
 * handler. Tasks stay in flight across reconnects until the executor's Resync says whether it still holds them.
 */
import type { WireError } from '../internal/errors.ts';
import type { TlsMaterial } from '../internal/grpc-tls.ts';
import type { Logger } from '../internal/logger.ts';
import type { OutputDecl } from '../taskstream/validate.ts';
import { type AckDecision, createAcks } from './acks.ts';
import { createAssignment } from './assignment.ts';
import { createBridgeCompletions } from './completion.ts';
import { createConnection } from './connection.ts';
import { createFlow } from './credits.ts';
import { createBridgeEvents } from './events.ts';
import { createStreamInbound } from './stream-inbound.ts';
import type { BridgeState, TaskSpec, ExecutorEvent } from './messages.ts';
import { createOutputExistence } from './output-check.ts';
import { type StorageBrokerLike, createStorageRequests, declaredOutputs } from './storage.ts';
import { createStorageHealth } from './storage-health.ts';
import { createTaskTable } from './task-table.ts';

export type { StorageBrokerLike } from './storage.ts';

export interface ExecutorBridgeOptions {
  /** gRPC target of the executor, e.g. `127.0.0.1:7070`. */
  endpoint: string;
  /** The link's TLS (`executor.tls_*`): the executor's CA, and wcp's client certificate for mTLS. Plaintext without. */
  tls?: TlsMaterial;
  /** Name checked against the executor's certificate instead of the endpoint's host (`executor.tls_server_name`). */
  tlsServerName?: string;
  /** Most tasks in flight at once, whatever the executor offers. */
  maxInflight: number;
  /** Ping period once ready. */
  keepaliveIntervalMs: number;
  /** A Ping unanswered this long drops the connection (also the handshake deadline unless set below). */
  keepaliveTimeoutMs: number;
  reconnectBaseMs: number;
  reconnectMaxMs: number;
  /** gRPC max send/receive message size. */
  maxMessageBytes: number;
  /** Presigns input (GET) and declared output (PUT) URLs and answers StorageRequests; without it both are refused. */
  broker?: StorageBrokerLike;
  workerAddress: string;
  logger: Logger;
  emit: (msg: ExecutorEvent) => void;
  /** Dial-to-ready deadline (default max(keepaliveTimeoutMs, 5000)). */
  handshakeTimeoutMs?: number;
  /** Declared outputs per activity type (e.g. from activity specs); overrides the executor's declarations. */
  outputSpecs?: Record<string, OutputDecl[]>;
  /** After a task's deadline plus this, it is dropped with DEADLINE_EXCEEDED (default 30000). */
  deadlineGraceMs?: number;
  wcpVersion?: string;
  /**
   * Upper bound of a presigned URL's lifetime: `subnet_api.url_ttl`, compiled by `supervisor/options.ts`. The
   * fallback, for bridges built without a config (tests), is that field's schema default, 15 min.
   */
  presignMaxTtlSeconds?: number;
  /** Jitter source in [0, 1) (default Math.random). */
  random?: () => number;
  /** Whether output objects are checked for existence before a success is forwarded (default true; needs a broker). */
  checkOutputsExist?: boolean;
  /** Per HTTP request of the existence check (default 5000). */
  outputCheckTimeoutMs?: number;
  /** First delay between storage probes while storage is down (default 1000; then backoff up to 10000). */
  storageProbeBaseMs?: number;
}

/** A snapshot of the bridge for status reports. */
export interface ExecutorBridgeStatus {
  state: BridgeState | 'idle';
  executor_id: string | undefined;
  executor_version: string | undefined;
  activity_types: string[];
  in_flight: string[];
  available: number;
  draining: boolean;
  connects: number;
  last_error: WireError | undefined;
  /** Whether the storage service answers; undefined without a broker or before the first answer. */
  storage_available: boolean | undefined;
  /** Why the storage service refuses the worker, while it does. */
  storage_refused: string | undefined;
}

/** wcp's end of the TaskStream; see the module doc. */
export interface ExecutorBridge {
  start(): void;
  /** Offers a task; the answer arrives as `accepted` or `assignRejected` (the promise settles when it was sent). */
  assign(task: TaskSpec): Promise<void>;
  cancel(activityId: string, reason: string): void;
  /** The supervisor's verdict on a forwarded Completion: relayed to the executor as a CompletionAck. */
  ackCompletion(d: AckDecision): void;
  drain(): void;
  stop(): Promise<void>;
  status(): ExecutorBridgeStatus;
}

/** Builds an idle bridge; `start()` dials. */
export function createExecutorBridge(opts: ExecutorBridgeOptions): ExecutorBridge {
  const logger = opts.logger;
  const presignMaxTtlSeconds = opts.presignMaxTtlSeconds ?? 900;
  // A state event says whether the first storage answer is still awaited (the claim gate waits for it).
  const events = createBridgeEvents(
    (msg) =>
      opts.emit(
        msg.type === 'state' && opts.broker !== undefined && health.state() === undefined
          ? { ...msg, storage_pending: true }
          : msg,
      ),
    logger,
  );
  const tasks = createTaskTable();
  const connection = createConnection({
    endpoint: opts.endpoint,
    ...(opts.tls !== undefined ? { tls: opts.tls } : {}),
    ...(opts.tlsServerName !== undefined ? { tlsServerName: opts.tlsServerName } : {}),
    maxMessageBytes: opts.maxMessageBytes,
    reconnectBaseMs: opts.reconnectBaseMs,
    reconnectMaxMs: opts.reconnectMaxMs,
    keepaliveIntervalMs: opts.keepaliveIntervalMs,
    keepaliveTimeoutMs: opts.keepaliveTimeoutMs,
    handshakeTimeoutMs: opts.handshakeTimeoutMs ?? Math.max(opts.keepaliveTimeoutMs, 5000),
    wcpVersion: opts.wcpVersion ?? '0.1.0',
    workerAddress: opts.workerAddress,
    random: opts.random ?? Math.random,
    logger,
    events,
    onMessage: (c, raw) => onMessage(c, raw),
    onCreditsChanged: () => flow.emitCredits(),
    storageTypes: (types) => types.filter((t) => outputsOf(t).length > 0),
  });
  const flow = createFlow({
    maxInflight: opts.maxInflight,
    connection,
    tasks,
    events,
    logger,
    busy: () => completions.checking(),
  });
  const acks = createAcks({ connection, logger });
  const health = createStorageHealth({
    events,
    logger,
    ...(opts.storageProbeBaseMs !== undefined ? { probeBaseMs: opts.storageProbeBaseMs } : {}),
    ...(opts.random !== undefined ? { random: opts.random } : {}),
  });
  // Every presign goes through the health watch: its outcomes tell whether storage answers.
  const broker = opts.broker !== undefined ? health.watch(opts.broker) : undefined;
  const outputsOf = (activityType: string): OutputDecl[] =>
    declaredOutputs(opts.outputSpecs, connection.current()?.caps, activityType);
  const completions = createBridgeCompletions({
    tasks,
    flow,
    events,
    acks,
    logger,
    deadlineGraceMs: opts.deadlineGraceMs ?? 30_000,
    outputsOf,
    existence:
      broker !== undefined && opts.checkOutputsExist !== false
        ? createOutputExistence({
            broker,
            logger,
            ...(opts.outputCheckTimeoutMs !== undefined ? { timeoutMs: opts.outputCheckTimeoutMs } : {}),
          })
        : undefined,
  });
  const onStorageRequest = createStorageRequests({
    broker,
    presignMaxTtlSeconds,
    tasks,
    connection,
    events,
    logger,
    outputsOf,
  });
  const onMessage = createStreamInbound({ connection, tasks, flow, completions, events, logger, onStorageRequest });
  const assignment = createAssignment({
    broker,
    presignMaxTtlSeconds,
    connection,
    tasks,
    flow,
    completions,
    acks,
    events,
    logger,
    outputsOf,
  });
  let tick: ReturnType<typeof setInterval> | undefined;

  function start(): void {
    if (connection.state() !== 'idle') return;
    const tickMs = Math.max(
      10,
      Math.min(1000, Math.floor(Math.min(opts.keepaliveIntervalMs, opts.keepaliveTimeoutMs) / 4)),
    );
    tick = setInterval(() => {
      const now = Date.now();
      connection.tick(now);
      completions.expireOverdue(now);
    }, tickMs);
    connection.dial();
    if (broker !== undefined) health.start();
  }

  async function stop(): Promise<void> {
    if (connection.state() === 'stopped') return;
    if (tick !== undefined) clearInterval(tick);
    tick = undefined;
    health.stop();
    connection.stop();
    flow.emitCredits();
    events.send({ type: 'stopped' });
  }

  function status(): ExecutorBridgeStatus {
    const c = connection.current();
    return {
      state: connection.state(),
      executor_id: c?.hello?.executor_id,
      executor_version: c?.hello?.executor_version,
      activity_types: c?.caps?.activity_types ?? [],
      in_flight: [...tasks.ids()],
      available: flow.available(),
      draining: flow.draining(),
      connects: connection.connects(),
      last_error: connection.lastError(),
      storage_available: health.state() === undefined ? undefined : health.state() === 'up',
      storage_refused: health.refusal(),
    };
  }

  return {
    start,
    assign: assignment.assign,
    cancel: assignment.cancel,
    ackCompletion: acks.decide,
    drain: flow.drain,
    stop,
    status,
  };
}
