/**
 * The executor SDK: a gRPC server implementing TaskStream (see proto/execution/v1/execution.proto) that runs
 * activity handlers bound to activity specs.
 *
 * States: idle ──start()──▶ listening ──stop(graceMs)──▶ stopping ──▶ stopped.
 * One wcp stream is current at a time. A new stream is a candidate until its HelloAck names its wcp; then
 * stream-owner.ts decides: the same wcp takes over (after a reconnect its old stream may still look open), another
 * one is sent its Capabilities and refused with FAILED_PRECONDITION `EXECUTOR_IN_USE` while the current stream is
 * live, so no local client can push the daemon's stream aside. Tasks belong to the executor, not to a stream (tasks.ts): they keep running while wcp is
 * away, and their completions are kept — until wcp acknowledges them, when its HelloAck says it does — and
 * delivered on the next stream, after a Resync that lists them.
 */
import { type ServerDuplexStream, Server, status as grpcStatus } from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import {
  PROTOCOL_VERSION,
  type ExecutorMessageWire,
  type TaskAssignmentWire,
  loadExecutorService,
} from '../taskstream/protocol.ts';
import { errorText } from '../internal/errors.ts';
import { type ServerTlsMaterial, serverCredentialsFor } from '../internal/grpc-tls.ts';
import { type Logger, createLogger } from '../internal/logger.ts';
import type { Handler } from './run-task.ts';
import { type ActivitySpec, capabilitiesOf } from './spec.ts';
import { createStorageRequests } from './storage-requests.ts';
import { DEFAULT_STALE_STREAM_MS, decideOwnership, normalizeIdentity } from './stream-owner.ts';
import { createTaskRunner } from './tasks.ts';

/** How to build an executor: its activities, their handlers, and the server's limits. */
export interface ExecutorOptions {
  specs: ActivitySpec[] | Map<string, ActivitySpec>;
  /** Activity type → handler; every spec needs one and every handler a spec. */
  handlers: Record<string, Handler>;
  /** Most tasks run at once. */
  concurrency: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 7070; 0 picks a free port. */
  port?: number;
  /** TLS: the server's certificate and key; with `clientCa`, wcp must present a certificate it signed (mTLS). */
  tls?: ServerTlsMaterial;
  executorId?: string;
  executorVersion?: string;
  logger?: Logger;
  /** How long to wait for wcp's HelloAck (default 10000). */
  helloAckTimeoutMs?: number;
  /** How long requestStorage waits for a grant, including for wcp to connect (default 30000). */
  storageTimeoutMs?: number;
  maxMessageBytes?: number;
  /** A current stream silent this long no longer counts as live: another wcp may take it (default 30000). */
  staleStreamMs?: number;
  /** Protocol version announced in Hello (tests only; default PROTOCOL_VERSION). */
  protocolVersion?: number;
}

/** The executor's state (see the module doc for the transitions). */
export type ExecutorState = 'idle' | 'listening' | 'stopping' | 'stopped';

/** The legal state changes (an executor never started may stop at once). */
const EXECUTOR_TRANSITIONS: Record<ExecutorState, readonly ExecutorState[]> = {
  idle: ['listening', 'stopped'],
  listening: ['stopping'],
  stopping: ['stopped'],
  stopped: [],
};

/** What the log says on entering each state. */
const STATE_MESSAGES: Record<ExecutorState, string> = {
  idle: 'Executor idle.',
  listening: 'Executor listening.',
  stopping: 'Executor stopping.',
  stopped: 'Executor stopped.',
};

/** A snapshot for status reports and tests. */
export interface ExecutorStatus {
  state: ExecutorState;
  port: number | undefined;
  connected: boolean;
  running: string[];
  pending_completions: string[];
  credits: number;
}

/** A TaskStream server running activity handlers. */
export interface Executor {
  start(): Promise<{ port: number }>;
  /** Stops taking work, lets running tasks finish for up to `graceMs`, cancels the rest, delivers what it can. */
  stop(graceMs: number): Promise<void>;
  status(): ExecutorStatus;
}

type Call = ServerDuplexStream<Record<string, unknown>, ExecutorMessageWire>;

interface Stream {
  call: Call;
  /** Accepted: this is (or was) the current stream. Before that it is a candidate. */
  acked: boolean;
  /** The worker address its HelloAck named (normalised), once it arrived. */
  identity: string | undefined;
  lastHeardAt: number;
  /** The wcp at the other end answers each Completion with a CompletionAck. */
  acksCompletions: boolean;
  assignmentsReceived: number;
  helloTimer: ReturnType<typeof setTimeout> | undefined;
}

/** Builds an idle executor; throws when a spec has no handler, a handler no spec, or concurrency is not ≥ 1. */
export function createExecutor(opts: ExecutorOptions): Executor {
  const log = (opts.logger ?? createLogger('wep')).child('executor');
  const specs = new Map<string, ActivitySpec>(
    opts.specs instanceof Map ? opts.specs : opts.specs.map((s) => [s.name, s]),
  );
  for (const name of specs.keys())
    if (opts.handlers[name] === undefined) throw new Error(`no handler for activity type ${name}`);
  for (const name of Object.keys(opts.handlers))
    if (!specs.has(name)) throw new Error(`handler ${name} has no activity spec`);
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1)
    throw new Error('concurrency must be a positive integer');

  const executorId = opts.executorId ?? `wep-${randomUUID().slice(0, 8)}`;
  const executorVersion = opts.executorVersion ?? '0.1.0';
  const helloAckTimeoutMs = opts.helloAckTimeoutMs ?? 10_000;
  const storageTimeoutMs = opts.storageTimeoutMs ?? 30_000;
  const Service = loadExecutorService();
  const server = new Server({
    'grpc.max_receive_message_length': opts.maxMessageBytes ?? 4 * 1024 * 1024,
    'grpc.max_send_message_length': opts.maxMessageBytes ?? 4 * 1024 * 1024,
  });

  let state: ExecutorState = 'idle';
  /** The one place `state` changes; an illegal change is a bug in this file. */
  function setState(next: ExecutorState, fields: Record<string, unknown> = {}): void {
    if (!EXECUTOR_TRANSITIONS[state].includes(next)) throw new Error(`executor cannot go from ${state} to ${next}`);
    log.info(STATE_MESSAGES[next], { from: state, ...fields });
    state = next;
  }
  let boundPort: number | undefined;
  /** The current stream; always accepted. */
  let active: Stream | undefined;
  const candidates = new Set<Stream>();
  let lastRefusal = '';
  const storageRequests = createStorageRequests({
    executorId,
    timeoutMs: storageTimeoutMs,
    current: () => {
      const s = active;
      return s?.acked === true ? (msg) => write(s, msg) : undefined;
    },
    stopped: () => state === 'stopped',
  });

  const tasks = createTaskRunner({
    specs,
    handlers: opts.handlers,
    concurrency: opts.concurrency,
    logger: log,
    accepting: () => state === 'listening',
    send: (msg) => active?.acked === true && write(active, msg),
    acksCompletions: () => active?.acksCompletions === true,
    capacityChanged: () => sendCapacity(),
    requestStorage: (activityId, key, method) => storageRequests.request(activityId, key, method),
  });
  const credits = (): number => (state === 'listening' ? Math.max(0, opts.concurrency - tasks.runningCount()) : 0);

  function write(s: Stream, msg: ExecutorMessageWire): boolean {
    try {
      s.call.write(msg);
      return true;
    } catch (e) {
      log.warn('Write to wcp failed.', { error: errorText(e) });
      detach(s, 'write failed');
      return false;
    }
  }

  // Capacity updates are cumulative (credits now, assignments received so far), so the ones a burst of task
  // starts and finishes would send are coalesced into one per turn of the event loop.
  let capacityQueued = false;
  function sendCapacity(): void {
    if (capacityQueued) return;
    capacityQueued = true;
    setImmediate(() => {
      capacityQueued = false;
      if (active?.acked)
        write(active, { capacity_update: { credits: credits(), assignments_received: active.assignmentsReceived } });
    });
  }

  function detach(s: Stream, why: string): void {
    if (s.helloTimer !== undefined) clearTimeout(s.helloTimer);
    candidates.delete(s);
    if (active !== s) return;
    active = undefined;
    log.info('wcp stream closed.', { reason: why });
    storageRequests.rejectAll('wcp stream lost before the storage grant arrived');
  }

  function refuseStream(s: Stream, reason: string, level: 'error' | 'warn' = 'error'): void {
    // One clear line per distinct cause; wcp retries with backoff, repeats go to debug.
    if (reason !== lastRefusal) log[level](reason);
    else log.debug(reason);
    lastRefusal = reason;
    detach(s, reason);
    s.call.emit('error', { code: grpcStatus.FAILED_PRECONDITION, details: reason });
  }

  function onStream(call: Call): void {
    const s: Stream = {
      call,
      acked: false,
      identity: undefined,
      lastHeardAt: Date.now(),
      acksCompletions: false,
      assignmentsReceived: 0,
      helloTimer: undefined,
    };
    call.on('error', (e: Error) => {
      log.debug('wcp stream error.', { error: errorText(e) });
      detach(s, 'stream error');
    });
    call.on('cancelled', () => detach(s, 'cancelled by wcp'));
    call.on('end', () => {
      detach(s, 'ended by wcp');
      try {
        call.end();
      } catch {
        /* already closed */
      }
    });
    if (state !== 'listening') {
      call.emit('error', { code: grpcStatus.UNAVAILABLE, details: 'executor is shutting down' });
      return;
    }
    candidates.add(s);
    call.on('data', (m: Record<string, unknown>) => {
      s.lastHeardAt = Date.now();
      try {
        onMessage(s, m);
      } catch (e) {
        log.error('Handling a wcp message failed.', { error: errorText(e) });
      }
    });
    s.helloTimer = setTimeout(
      () => refuseStream(s, `wcp sent no HelloAck within ${helloAckTimeoutMs} ms`),
      helloAckTimeoutMs,
    );
    write(s, {
      hello: {
        executor_id: executorId,
        executor_version: executorVersion,
        protocol_version: opts.protocolVersion ?? PROTOCOL_VERSION,
      },
    });
  }

  function onMessage(s: Stream, m: Record<string, unknown>): void {
    if (s.acked ? active !== s : !candidates.has(s)) return;
    const kind = m.msg;
    const body = (typeof kind === 'string' ? m[kind] : undefined) as Record<string, unknown> | undefined;
    if (body === undefined || body === null) return;
    if (!s.acked) {
      if (kind !== 'hello_ack') return log.warn('Ignored a wcp message before HelloAck.', { kind });
      if (s.helloTimer !== undefined) clearTimeout(s.helloTimer);
      const version = Number(body.protocol_version);
      if (body.accepted !== true)
        return refuseStream(s, `wcp refused this executor: ${String(body.reason).slice(0, 300)}`);
      if (version !== PROTOCOL_VERSION) {
        return refuseStream(
          s,
          `TaskStream protocol mismatch: wcp speaks v${version}, this executor speaks v${PROTOCOL_VERSION}`,
        );
      }
      s.identity = normalizeIdentity(body.worker_address);
      const capabilities: ExecutorMessageWire = { capabilities: capabilitiesOf(specs, opts.concurrency) };
      const verdict = decideOwnership(active, s.identity, Date.now(), opts.staleStreamMs ?? DEFAULT_STALE_STREAM_MS);
      if (!verdict.take) {
        // Capabilities first: a probe (wcp doctor) learns what it asked for, and nothing else reaches it.
        write(s, capabilities);
        return refuseStream(s, `${verdict.code}: ${verdict.message}`, 'warn');
      }
      const old = active;
      if (old !== undefined) {
        detach(old, verdict.replaces === 'stale' ? 'replaced: silent too long' : 'replaced by the same wcp');
        try {
          old.call.end();
        } catch {
          /* already closed */
        }
      }
      candidates.delete(s);
      active = s;
      s.acked = true;
      s.acksCompletions = body.acks_completions === true;
      lastRefusal = '';
      log.info('wcp connected.', {
        wcp_version: String(body.wcp_version),
        worker_address: s.identity,
        acks_completions: s.acksCompletions,
        running: tasks.runningCount(),
        pending: tasks.pendingCount(),
      });
      write(s, capabilities);
      write(s, { resync: { running_activity_ids: tasks.heldIds() } });
      sendCapacity();
      tasks.flushPending((msg) => active === s && write(s, msg), s.acksCompletions);
      storageRequests.wake();
      return;
    }
    switch (kind) {
      case 'ping':
        write(s, { pong: { nonce: String(body.nonce) } });
        return;
      case 'task_assignment':
        s.assignmentsReceived += 1;
        tasks.onAssignment(body as unknown as TaskAssignmentWire);
        return;
      case 'cancel':
        tasks.cancel(String(body.activity_id), String(body.reason));
        return;
      case 'completion_ack':
        tasks.onAck({
          activity_id: String(body.activity_id),
          attempt: Number(body.attempt),
          accepted: body.accepted === true,
          code: String(body.code ?? ''),
          reason: String(body.reason ?? '').slice(0, 1024),
        });
        return;
      case 'storage_grant':
        storageRequests.onGrant(body);
        return;
      default:
        log.debug('Ignored an unexpected wcp message.', { kind });
    }
  }

  async function start(): Promise<{ port: number }> {
    if (state !== 'idle') throw new Error(`executor already ${state}`);
    server.addService(Service.service, { TaskStream: onStream });
    const addr = `${opts.host ?? '127.0.0.1'}:${opts.port ?? 7070}`;
    boundPort = await new Promise<number>((resolve, reject) => {
      server.bindAsync(addr, serverCredentialsFor(opts.tls), (err, port) => (err ? reject(err) : resolve(port)));
    });
    setState('listening', {
      address: `${opts.host ?? '127.0.0.1'}:${boundPort}`,
      executor_id: executorId,
      activity_types: [...specs.keys()].join(','),
      tls: opts.tls === undefined ? 'off' : opts.tls.clientCa === undefined ? 'tls' : 'mtls',
    });
    return { port: boundPort };
  }

  async function stop(graceMs: number): Promise<void> {
    if (state === 'stopped' || state === 'stopping') return;
    if (state === 'idle') {
      setState('stopped');
      return;
    }
    setState('stopping', { running: tasks.runningCount(), grace_ms: graceMs });
    sendCapacity();
    await tasks.finish(graceMs);
    for (const s of [...candidates, ...(active === undefined ? [] : [active])]) {
      detach(s, 'executor stopping');
      try {
        s.call.end();
      } catch {
        /* already closed */
      }
    }
    if (tasks.pendingCount() > 0)
      log.warn('Stopped with completions wcp has not taken.', { count: tasks.pendingCount() });
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 2000);
      server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    setState('stopped');
    storageRequests.wake();
  }

  function status(): ExecutorStatus {
    return {
      state,
      port: boundPort,
      connected: active?.acked === true,
      running: tasks.runningIds(),
      pending_completions: tasks.pendingIds(),
      credits: credits(),
    };
  }

  return { start, stop, status };
}
