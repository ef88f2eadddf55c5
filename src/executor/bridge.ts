/**
 * The executor bridge: wcp's end of the TaskStream. Runs in a worker thread; talks to the supervisor only through
 * `emit` (see messages.ts) and is driven by `assign` / `cancel` / `drain` / `stop`.
 *
 * States (`BridgeState`), one connection at a time:
 *   idle ──start()──▶ connecting ──Hello──▶ handshaking ──Capabilities+Resync──▶ ready
 *   connecting | handshaking | ready ──error / end / keepalive or handshake timeout / bad version──▶ backoff
 *   backoff ──timer (exponential, jittered)──▶ connecting;   any ──stop()──▶ stopped (terminal)
 * Every dial uses a fresh channel, so a half-open TCP connection to a frozen peer is never reused.
 *
 * Invariants: assignments written ≤ executor credits (adjusted for assignments it has not yet seen) and
 * in-flight ≤ maxInflight; every executor message is validated and checked against the in-flight table before
 * anything is emitted; a completion is emitted at most once per assignment; nothing thrown escapes a stream
 * handler. Tasks stay in flight across reconnects until the executor's Resync says whether it still holds them.
 */
import { type ClientDuplexStream, type ServiceError, credentials, status as grpcStatus } from '@grpc/grpc-js';
import { type WireError, WcpError, errorText, toWire } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import type { AssignRejectReason, BridgeState, TaskSpec, WorkerToSupervisor } from './messages.ts';
import { PROTOCOL_VERSION, type WcpMessageWire, loadExecutorService } from '../taskstream/protocol.ts';
import { formatBlobRef, isActivityId, keyProblem, parseBlobRef, parseInputRef } from '../taskstream/refs.ts';
import { type ExecutorMessage, type OutputDecl, parseExecutorMessage } from '../taskstream/validate.ts';

/** What the bridge needs from the storage broker (src/storage/broker.ts satisfies it). */
export interface StorageBrokerLike {
  presign(p: {
    activityId: string;
    key: string;
    method: 'GET' | 'PUT';
    contentType?: string;
    ttlSeconds?: number;
  }): Promise<{ url: string; method: string; expiresAtMs: number; headers: Record<string, string> }>;
  close(): void;
}

export interface ExecutorBridgeOptions {
  /** gRPC target of the executor, e.g. `127.0.0.1:7070`. */
  endpoint: string;
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
  emit: (msg: WorkerToSupervisor) => void;
  /** Dial-to-ready deadline (default max(keepaliveTimeoutMs, 5000)). */
  handshakeTimeoutMs?: number;
  /** Declared outputs per activity type (e.g. from activity specs); overrides the executor's declarations. */
  outputSpecs?: Record<string, OutputDecl[]>;
  /** After a task's deadline plus this, it is dropped with DEADLINE_EXCEEDED (default 30000). */
  deadlineGraceMs?: number;
  wcpVersion?: string;
  /** Upper bound of a presigned URL's lifetime (default 3600). */
  presignMaxTtlSeconds?: number;
  /** Jitter source in [0, 1) (default Math.random). */
  random?: () => number;
}

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
}

export interface ExecutorBridge {
  start(): void;
  /** Offers a task; the answer arrives as `accepted` or `assignRejected` (the promise settles when it was sent). */
  assign(task: TaskSpec): Promise<void>;
  cancel(activityId: string, reason: string): void;
  drain(): void;
  stop(): Promise<void>;
  status(): ExecutorBridgeStatus;
}

interface InflightTask {
  task: TaskSpec;
  stage: 'reserved' | 'sent';
  /** Blob references the task's input names (allowed for GET StorageRequests and as pass-through outputs). */
  inputRefs: Set<string>;
  cancelReason: string | undefined;
  cancelSent: boolean;
}

interface Conn {
  gen: number;
  client: { close(): void };
  call: ClientDuplexStream<WcpMessageWire, unknown>;
  dialedAt: number;
  hello: Extract<ExecutorMessage, { kind: 'hello' }> | undefined;
  caps: Extract<ExecutorMessage, { kind: 'capabilities' }> | undefined;
  resynced: boolean;
  credits: number;
  sent: number;
  receivedAtUpdate: number;
  reserved: number;
  awaitingPong: { nonce: string; sentAt: number } | undefined;
  lastPingAt: number;
  storageRequests: number;
  /** Set when wcp is closing this connection on purpose (e.g. refused Hello); wins over the stream's own end. */
  fatal: { detail: string; error: WcpError } | undefined;
}

const CLOSED_MEMORY = 10_000;
type ClosedHow = 'completed' | 'lost' | 'expired' | 'cancelled';
const MAX_STORAGE_REQUESTS = 64;

export function createExecutorBridge(opts: ExecutorBridgeOptions): ExecutorBridge {
  const log = opts.logger;
  const random = opts.random ?? Math.random;
  const handshakeTimeoutMs = opts.handshakeTimeoutMs ?? Math.max(opts.keepaliveTimeoutMs, 5000);
  const deadlineGraceMs = opts.deadlineGraceMs ?? 30_000;
  const Executor = loadExecutorService();

  let state: BridgeState | 'idle' = 'idle';
  let conn: Conn | undefined;
  let gen = 0;
  let connects = 0;
  let backoffAttempt = 0;
  let backoffTimer: ReturnType<typeof setTimeout> | undefined;
  let tick: ReturnType<typeof setInterval> | undefined;
  let draining = false;
  let drainedSent = false;
  let lastError: WireError | undefined;
  let lastErrorKey = '';
  let lastCredits = -1;
  let nonce = 0;
  let everReady = false;
  const inflight = new Map<string, InflightTask>();
  // Recently finished ids → how, to tell duplicate and late completions from foreign ones. Two generations of up to CLOSED_MEMORY each: when the young one fills up it becomes
  // the old one and the previous old one is dropped. (Evicting the oldest key of one Map one at a time made
  // `keys().next()` walk the deleted entries at the front: 6 % of the dispatch benchmark's CPU.)
  let closed = new Map<string, ClosedHow>();
  let closedOld = new Map<string, ClosedHow>();
  let rejectLogWindow = 0;
  let rejectLogCount = 0;

  const send = (msg: WorkerToSupervisor): void => {
    try {
      opts.emit(msg);
    } catch (e) {
      log.error('Could not emit to the supervisor.', { type: msg.type, error: errorText(e) });
    }
  };

  function setState(next: BridgeState, detail?: string, error?: WireError): void {
    if (state === 'stopped') return;
    state = next;
    const ex = conn?.hello?.executor_id;
    const types = conn?.caps?.activity_types;
    log.info('Executor bridge state changed.', { state: next, executor_id: ex, detail });
    send({
      type: 'state',
      state: next,
      ...(ex !== undefined && next === 'ready' ? { executor_id: ex } : {}),
      ...(types !== undefined && next === 'ready' ? { activity_types: [...types] } : {}),
      ...(detail !== undefined ? { detail } : {}),
      ...(error !== undefined ? { error } : {}),
    });
  }

  function available(): number {
    if (state !== 'ready' || draining || conn === undefined) return 0;
    const exec = conn.credits - (conn.sent - conn.receivedAtUpdate) - conn.reserved;
    return Math.max(0, Math.min(exec, opts.maxInflight - inflight.size));
  }

  function emitCredits(): void {
    const a = available();
    if (a !== lastCredits) {
      lastCredits = a;
      send({ type: 'credits', available: a });
    }
  }

  function checkDrained(): void {
    if (draining && !drainedSent && inflight.size === 0) {
      drainedSent = true;
      log.info('Executor bridge drained.');
      send({ type: 'drained' });
    }
  }

  function remember(id: string, how: ClosedHow): void {
    closedOld.delete(id);
    closed.set(id, how);
    if (closed.size >= CLOSED_MEMORY) {
      closedOld = closed;
      closed = new Map();
    }
  }
  const closedAs = (id: string): ClosedHow | undefined => closed.get(id) ?? closedOld.get(id);

  function reject(reason: string, activityId?: string): void {
    const now = Date.now();
    if (now - rejectLogWindow > 10_000) {
      if (rejectLogCount > 20) log.warn('Suppressed rejected-message logs.', { count: rejectLogCount - 20 });
      rejectLogWindow = now;
      rejectLogCount = 0;
    }
    rejectLogCount += 1;
    if (rejectLogCount <= 20) log.warn('Rejected an executor message.', { reason, activity_id: activityId });
    send(activityId === undefined ? { type: 'rejected', reason } : { type: 'rejected', reason, activity_id: activityId });
  }

  function write(c: Conn, msg: WcpMessageWire): boolean {
    if (conn !== c) return false;
    try {
      c.call.write(msg);
      return true;
    } catch (e) {
      teardown(c, `write failed: ${errorText(e)}`);
      return false;
    }
  }

  // ---- connection lifecycle ------------------------------------------------------------------------------------

  function dial(): void {
    backoffTimer = undefined;
    if (state === 'stopped') return;
    gen += 1;
    connects += 1;
    const channelOptions = {
      'grpc.max_receive_message_length': opts.maxMessageBytes,
      'grpc.max_send_message_length': opts.maxMessageBytes,
      'grpc.initial_reconnect_backoff_ms': Math.max(100, opts.reconnectBaseMs),
      'grpc.max_reconnect_backoff_ms': Math.max(100, opts.reconnectMaxMs),
    };
    let client: InstanceType<typeof Executor>;
    let call: ClientDuplexStream<WcpMessageWire, unknown>;
    try {
      client = new Executor(opts.endpoint, credentials.createInsecure(), channelOptions);
      call = (client as unknown as { TaskStream(): ClientDuplexStream<WcpMessageWire, unknown> }).TaskStream();
    } catch (e) {
      const err = new WcpError('EXECUTOR_UNAVAILABLE', `Cannot dial the executor at ${opts.endpoint}: ${errorText(e)}`, {
        retryable: true,
      });
      scheduleReconnect(err.message, toWire(err));
      return;
    }
    const c: Conn = {
      gen,
      client,
      call,
      dialedAt: Date.now(),
      hello: undefined,
      caps: undefined,
      resynced: false,
      credits: 0,
      sent: 0,
      receivedAtUpdate: 0,
      reserved: 0,
      awaitingPong: undefined,
      lastPingAt: 0,
      storageRequests: 0,
      fatal: undefined,
    };
    conn = c;
    // Bun crashes on an unhandled 'error': this listener stays for the life of the call.
    call.on('error', (e: ServiceError) => {
      if (e?.code === grpcStatus.RESOURCE_EXHAUSTED) reject(`oversized or excessive message: ${e.details ?? ''}`.slice(0, 300));
      teardown(c, `stream error: ${grpcStatus[e?.code] ?? e?.code} ${e?.details ?? e?.message ?? ''}`.trim());
    });
    call.on('end', () => teardown(c, 'executor closed the stream'));
    call.on('data', (raw: unknown) => {
      try {
        onMessage(c, raw);
      } catch (e) {
        log.error('Executor message handler failed.', { error: errorText(e) });
        reject(`internal error handling message: ${errorText(e)}`.slice(0, 300));
      }
    });
    setState('connecting', `dialing ${opts.endpoint}`);
  }

  function teardown(c: Conn, detail: string, error?: WcpError): void {
    if (conn !== c) return;
    if (c.fatal !== undefined) {
      detail = c.fatal.detail;
      error = c.fatal.error;
    }
    conn = undefined;
    try {
      c.call.cancel();
    } catch {
      /* already closed */
    }
    try {
      c.client.close();
    } catch {
      /* already closed */
    }
    emitCredits();
    if (state === 'stopped') return;
    const wire = error !== undefined ? toWire(error) : toWire(new WcpError('EXECUTOR_UNAVAILABLE', detail, { retryable: true }));
    scheduleReconnect(detail, wire);
  }

  function scheduleReconnect(detail: string, error: WireError): void {
    lastError = error;
    const key = `${error.code}:${error.message}`;
    if (error.code === 'EXECUTOR_PROTOCOL') {
      // One clear error per distinct cause; repeats of the same refusal go to debug.
      if (key !== lastErrorKey) log.error(error.message, { code: error.code });
      else log.debug(error.message, { code: error.code });
    }
    lastErrorKey = key;
    const ceiling = Math.min(opts.reconnectMaxMs, opts.reconnectBaseMs * 2 ** Math.min(backoffAttempt, 30));
    const delay = Math.max(1, Math.round(ceiling * (0.5 + random() * 0.5)));
    backoffAttempt += 1;
    setState('backoff', `${detail}; retrying in ${delay} ms`, error);
    backoffTimer = setTimeout(dial, delay);
  }

  function onTick(): void {
    const now = Date.now();
    const c = conn;
    if (c !== undefined) {
      if (state !== 'ready' && now - c.dialedAt > handshakeTimeoutMs) {
        const what = c.hello === undefined ? 'no Hello' : c.caps === undefined ? 'no Capabilities' : 'no Resync';
        teardown(c, `handshake timed out after ${handshakeTimeoutMs} ms (${what})`);
      } else if (state === 'ready') {
        if (c.awaitingPong !== undefined && now - c.awaitingPong.sentAt > opts.keepaliveTimeoutMs) {
          teardown(c, `keepalive: no Pong within ${opts.keepaliveTimeoutMs} ms`);
        } else if (c.awaitingPong === undefined && now - c.lastPingAt >= opts.keepaliveIntervalMs) {
          nonce += 1;
          c.awaitingPong = { nonce: String(nonce), sentAt: now };
          c.lastPingAt = now;
          write(c, { ping: { nonce: String(nonce) } });
        }
      }
    }
    for (const [id, t] of inflight) {
      if (t.stage === 'sent' && now > t.task.deadline_unix_ms + deadlineGraceMs) {
        inflight.delete(id);
        remember(id, 'expired');
        log.warn('Dropped a task the executor did not finish before its deadline.', { activity_id: id });
        send({
          type: 'completion',
          activity_id: id,
          attempt: t.task.attempt,
          result: { ok: false, code: 'DEADLINE_EXCEEDED', message: 'executor did not complete before the deadline', retryable: false },
        });
        emitCredits();
        checkDrained();
      }
    }
  }

  // ---- inbound -------------------------------------------------------------------------------------------------

  function onMessage(c: Conn, raw: unknown): void {
    if (conn !== c || c.fatal !== undefined) return;
    const parsed = parseExecutorMessage(raw);
    if (!parsed.ok) {
      reject(parsed.reason, parsed.activity_id);
      if (c.hello === undefined) teardown(c, `first executor message invalid: ${parsed.reason}`, protocolError(`Executor sent an invalid first message: ${parsed.reason}`));
      return;
    }
    const m = parsed.msg;
    if (c.hello === undefined) {
      if (m.kind !== 'hello') {
        reject(`expected Hello first, got ${m.kind}`);
        teardown(c, 'executor did not start with Hello', protocolError(`Executor did not start the stream with Hello (got ${m.kind}).`));
        return;
      }
      onHello(c, m);
      return;
    }
    switch (m.kind) {
      case 'hello':
        return reject('unexpected second Hello');
      case 'capabilities':
        c.caps = m;
        if (state === 'ready') {
          log.info('Executor capabilities changed.', { activity_types: m.activity_types.join(','), max_concurrency: m.max_concurrency });
          emitCredits();
        } else maybeReady(c);
        return;
      case 'resync':
        if (c.resynced || c.caps === undefined) return reject(c.resynced ? 'unexpected Resync after handshake' : 'Resync before Capabilities');
        onResync(c, m.running_activity_ids);
        return;
      case 'capacity_update':
        if (m.assignments_received > c.sent) return reject(`capacity_update counts ${m.assignments_received} assignments, only ${c.sent} sent`);
        c.credits = m.credits;
        c.receivedAtUpdate = m.assignments_received;
        emitCredits();
        return;
      case 'pong':
        if (c.awaitingPong?.nonce === m.nonce) c.awaitingPong = undefined;
        else reject(`Pong with unexpected nonce ${m.nonce}`);
        return;
      case 'progress': {
        if (state !== 'ready') return reject('Progress before the handshake finished', m.activity_id);
        const t = inflight.get(m.activity_id);
        if (t?.stage !== 'sent') return reject('Progress for an activity not assigned to this executor', m.activity_id);
        send({ type: 'progress', activity_id: m.activity_id, fraction: m.fraction, message: m.message });
        return;
      }
      case 'completion':
        if (!c.resynced) return reject('Completion before Resync', m.activity_id);
        onCompletion(m);
        return;
      case 'storage_request':
        if (state !== 'ready') return reject('StorageRequest before the handshake finished', m.activity_id);
        onStorageRequest(c, m);
        return;
    }
  }

  function protocolError(message: string): WcpError {
    return new WcpError('EXECUTOR_PROTOCOL', message, { retryable: true });
  }

  function onHello(c: Conn, m: Extract<ExecutorMessage, { kind: 'hello' }>): void {
    c.hello = m;
    setState('handshaking', `executor ${m.executor_id} ${m.executor_version} (protocol v${m.protocol_version})`);
    if (m.protocol_version !== PROTOCOL_VERSION) {
      const reason = `TaskStream protocol mismatch: executor ${m.executor_id} speaks v${m.protocol_version}, this wcp speaks v${PROTOCOL_VERSION}`;
      write(c, { hello_ack: { protocol_version: PROTOCOL_VERSION, wcp_version: opts.wcpVersion ?? '0.1.0', accepted: false, reason } });
      c.fatal = { detail: reason, error: protocolError(`${reason}. Upgrade one side so both speak the same major version.`) };
      try {
        c.call.end();
      } catch {
        /* closing anyway */
      }
      // Give the refusal a moment to reach the executor before the stream is cancelled.
      setTimeout(() => teardown(c, reason), 250);
      return;
    }
    write(c, { hello_ack: { protocol_version: PROTOCOL_VERSION, wcp_version: opts.wcpVersion ?? '0.1.0', accepted: true, reason: '' } });
  }

  function onResync(c: Conn, reported: string[]): void {
    c.resynced = true;
    const reportedSet = new Set(reported);
    const running: string[] = [];
    const lost: string[] = [];
    for (const [id, t] of inflight) {
      if (t.stage !== 'sent') continue;
      if (reportedSet.has(id)) running.push(id);
      else {
        lost.push(id);
        inflight.delete(id);
        remember(id, 'lost');
      }
    }
    const foreign = reported.filter((id) => !inflight.has(id));
    if (foreign.length > 0) reject(`Resync lists ${foreign.length} activities not assigned by this wcp (ignored), e.g. ${foreign[0]}`);
    // Initial credits until the first CapacityUpdate: free slots net of what the executor holds.
    c.credits = Math.max(0, (c.caps?.max_concurrency ?? 0) - reported.length);
    if (everReady || running.length > 0 || lost.length > 0) {
      log.info('Resynced with the executor.', { running: running.length, lost: lost.length });
      send({ type: 'resync', running_activity_ids: running, lost_activity_ids: lost });
    }
    maybeReady(c);
    for (const id of running) {
      const t = inflight.get(id);
      if (t?.cancelReason !== undefined && !t.cancelSent) {
        t.cancelSent = write(c, { cancel: { activity_id: id, reason: t.cancelReason } });
      }
    }
    checkDrained();
  }

  function maybeReady(c: Conn): void {
    if (state === 'ready' || c.caps === undefined || !c.resynced) return;
    everReady = true;
    backoffAttempt = 0;
    lastErrorKey = '';
    c.lastPingAt = Date.now();
    setState('ready');
    emitCredits();
  }

  function onCompletion(m: Extract<ExecutorMessage, { kind: 'completion' }>): void {
    const id = m.activity_id;
    const t = inflight.get(id);
    if (t === undefined || t.stage !== 'sent') {
      const how = closedAs(id);
      const reason =
        t !== undefined ? 'Completion for an activity not yet assigned'
        : how === 'completed' ? 'duplicate Completion'
        : how !== undefined ? `late Completion (task already ${how})`
        : 'Completion for an activity not assigned to this executor';
      return reject(reason, id);
    }
    if (m.attempt !== t.task.attempt) return reject(`Completion for attempt ${m.attempt}, assigned attempt ${t.task.attempt}`, id);
    if (m.result.ok) {
      for (const [name, ref] of Object.entries(m.result.output_refs)) {
        const b = parseBlobRef(ref);
        if (b === null || (b.namespace !== id && !t.inputRefs.has(ref))) {
          return reject(`output "${name}" points outside the activity's namespace: ${ref.slice(0, 120)}`, id);
        }
      }
    }
    inflight.delete(id);
    remember(id, 'completed');
    send({ type: 'completion', activity_id: id, attempt: m.attempt, result: m.result });
    emitCredits();
    checkDrained();
  }

  function onStorageRequest(c: Conn, m: Extract<ExecutorMessage, { kind: 'storage_request' }>): void {
    const deny = (why: string): void => {
      reject(`StorageRequest refused: ${why}`, m.activity_id);
      write(c, { storage_grant: { request_id: m.request_id, url: '', method: m.method, expires_at_unix_ms: 0, error: why, headers: {} } });
    };
    const t = inflight.get(m.activity_id);
    if (t?.stage !== 'sent') return deny('activity not assigned to this executor');
    if (opts.broker === undefined) return deny('no storage broker configured');
    if (c.storageRequests >= MAX_STORAGE_REQUESTS) return deny('too many storage requests in progress');
    let target: { namespace: string; key: string } | null;
    if (m.key.startsWith('blob:')) {
      target = parseBlobRef(m.key);
      if (target === null) return deny('malformed blob reference');
      const own = target.namespace === m.activity_id;
      if (m.method === 'PUT' && !own) return deny('PUT is only allowed in the activity\'s own namespace');
      if (m.method === 'GET' && !own && !t.inputRefs.has(m.key)) return deny('GET is only allowed for the activity\'s inputs and outputs');
    } else {
      if (keyProblem(m.key) !== null) return deny(`invalid key: ${keyProblem(m.key)}`);
      target = { namespace: m.activity_id, key: m.key };
    }
    const decl = declaredOutputs(t.task.activity_type).find((d) => d.key === target.key);
    c.storageRequests += 1;
    opts.broker
      .presign({
        activityId: target.namespace,
        key: target.key,
        method: m.method,
        ...(m.method === 'PUT' && decl?.contentType ? { contentType: decl.contentType } : {}),
        ttlSeconds: ttlFor(t.task),
      })
      .then(
        (g) => {
          c.storageRequests -= 1;
          write(c, {
            storage_grant: { request_id: m.request_id, url: g.url, method: g.method, expires_at_unix_ms: g.expiresAtMs, error: '', headers: g.headers },
          });
        },
        (e: unknown) => {
          c.storageRequests -= 1;
          log.warn('Presigning for a StorageRequest failed.', { activity_id: m.activity_id, error: errorText(e) });
          write(c, { storage_grant: { request_id: m.request_id, url: '', method: m.method, expires_at_unix_ms: 0, error: `storage unavailable: ${errorText(e)}`.slice(0, 300), headers: {} } });
        },
      );
  }

  function declaredOutputs(type: string): OutputDecl[] {
    return opts.outputSpecs?.[type] ?? conn?.caps?.outputs[type] ?? [];
  }

  function ttlFor(task: TaskSpec): number {
    const remaining = Math.ceil((task.deadline_unix_ms - Date.now()) / 1000);
    return Math.max(60, Math.min(remaining, opts.presignMaxTtlSeconds ?? 3600));
  }

  // ---- outbound ------------------------------------------------------------------------------------------------

  function refuse(task: TaskSpec, reason: AssignRejectReason, retryable: boolean, detail?: string): void {
    log.debug('Assignment refused.', { activity_id: task.activity_id, reason, detail });
    send({ type: 'assignRejected', activity_id: task.activity_id, reason, retryable, ...(detail !== undefined ? { detail } : {}) });
  }

  async function assign(task: TaskSpec): Promise<void> {
    if (state === 'stopped' || draining) return refuse(task, 'draining', true);
    if (!isActivityId(task.activity_id) || !Number.isInteger(task.attempt) || task.attempt < 0) {
      return refuse(task, 'invalid_task', false, 'bad activity id or attempt');
    }
    let parsed: ReturnType<typeof parseInputRef>;
    try {
      parsed = parseInputRef(task.input_ref);
    } catch (e) {
      return refuse(task, 'invalid_task', false, errorText(e));
    }
    if (inflight.has(task.activity_id)) return refuse(task, 'duplicate', false);
    if (task.deadline_unix_ms <= Date.now()) return refuse(task, 'expired', false);
    const c = conn;
    if (state !== 'ready' || c === undefined) return refuse(task, 'not_connected', true, `bridge is ${state}`);
    if (!c.caps?.activity_types.includes(task.activity_type)) {
      return refuse(task, 'unsupported_type', false, `executor supports: ${c.caps?.activity_types.join(', ')}`);
    }
    if (available() < 1) return refuse(task, 'no_credits', true);

    const entry: InflightTask = { task, stage: 'reserved', inputRefs: new Set(parsed.blobRefs), cancelReason: undefined, cancelSent: false };
    inflight.set(task.activity_id, entry);
    c.reserved += 1;
    emitCredits();

    const inputUrls: Record<string, string> = {};
    const outputUrls: Record<string, string> = {};
    let storageError: unknown;
    if (opts.broker !== undefined) {
      const broker = opts.broker;
      const ttlSeconds = ttlFor(task);
      try {
        await Promise.all([
          ...parsed.blobRefs.map(async (ref) => {
            const b = parseBlobRef(ref);
            if (b === null) throw new WcpError('STORAGE_DENIED', `malformed blob reference ${ref}`);
            inputUrls[ref] = (await broker.presign({ activityId: b.namespace, key: b.key, method: 'GET', ttlSeconds })).url;
          }),
          ...declaredOutputs(task.activity_type).map(async (d) => {
            const g = await broker.presign({
              activityId: task.activity_id,
              key: d.key,
              method: 'PUT',
              ...(d.contentType ? { contentType: d.contentType } : {}),
              ttlSeconds,
            });
            outputUrls[d.key] = g.url;
          }),
        ]);
      } catch (e) {
        storageError = e;
      }
    }

    const release = (): void => {
      inflight.delete(task.activity_id);
      c.reserved -= 1;
    };
    const now = state as BridgeState | 'idle'; // re-read: it may have changed during the await
    if (conn !== c || now !== 'ready') {
      release();
      emitCredits();
      return refuse(task, now === 'stopped' ? 'draining' : 'not_connected', true, 'connection lost while preparing the assignment');
    }
    if (storageError !== undefined) {
      release();
      emitCredits();
      const retryable = !(storageError instanceof WcpError) || storageError.retryable;
      return refuse(task, retryable ? 'storage_unavailable' : 'invalid_task', retryable, errorText(storageError));
    }
    if (entry.cancelReason !== undefined) {
      release();
      remember(task.activity_id, 'cancelled');
      send({
        type: 'completion',
        activity_id: task.activity_id,
        attempt: task.attempt,
        result: { ok: false, code: 'CANCELLED', message: entry.cancelReason, retryable: false },
      });
      emitCredits();
      checkDrained();
      return;
    }
    c.reserved -= 1;
    entry.stage = 'sent';
    c.sent += 1;
    const ok = write(c, {
      task_assignment: {
        activity_id: task.activity_id,
        activity_type: task.activity_type,
        attempt: task.attempt,
        input_ref: task.input_ref,
        input_json: parsed.kind === 'json' ? parsed.json : '',
        input_urls: inputUrls,
        output_urls: outputUrls,
        deadline_unix_ms: task.deadline_unix_ms,
        workflow_instance: task.workflow_instance ?? '',
      },
    });
    if (!ok) {
      // The stream broke under us; the task stays in flight and the next Resync decides.
      return;
    }
    log.debug('Assigned a task.', { activity_id: task.activity_id, activity_type: task.activity_type, attempt: task.attempt });
    send({ type: 'accepted', activity_id: task.activity_id });
    emitCredits();
  }

  function cancel(activityId: string, reason: string): void {
    const t = inflight.get(activityId);
    if (t === undefined) {
      log.debug('Cancel for a task not in flight ignored.', { activity_id: activityId });
      return;
    }
    t.cancelReason = reason.slice(0, 1024);
    if (t.stage === 'sent' && conn !== undefined && state === 'ready' && !t.cancelSent) {
      t.cancelSent = write(conn, { cancel: { activity_id: activityId, reason: t.cancelReason } });
    }
  }

  function drain(): void {
    if (draining || state === 'stopped') return;
    draining = true;
    log.info('Executor bridge draining.', { in_flight: inflight.size });
    emitCredits();
    checkDrained();
  }

  async function stop(): Promise<void> {
    if (state === 'stopped') return;
    if (backoffTimer !== undefined) clearTimeout(backoffTimer);
    if (tick !== undefined) clearInterval(tick);
    backoffTimer = undefined;
    tick = undefined;
    const c = conn;
    setState('stopped', 'stop requested');
    if (c !== undefined) {
      try {
        c.call.end();
      } catch {
        /* closing anyway */
      }
      teardown(c, 'stopped');
    }
    emitCredits();
    send({ type: 'stopped' });
  }

  function start(): void {
    if (state !== 'idle') return;
    const tickMs = Math.max(10, Math.min(1000, Math.floor(Math.min(opts.keepaliveIntervalMs, opts.keepaliveTimeoutMs) / 4)));
    tick = setInterval(onTick, tickMs);
    dial();
  }

  function status(): ExecutorBridgeStatus {
    return {
      state,
      executor_id: conn?.hello?.executor_id,
      executor_version: conn?.hello?.executor_version,
      activity_types: conn?.caps?.activity_types ?? [],
      in_flight: [...inflight.keys()],
      available: available(),
      draining,
      connects,
      last_error: lastError,
    };
  }

  return { start, assign, cancel, drain, stop, status };
}
