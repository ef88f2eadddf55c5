/**
 * The bridge's connection to the executor: dial, handshake, keepalive and reconnect backoff, one connection at a
 * time. States (`BridgeState`):
 *
 *   idle ──dial()──▶ connecting ──Hello──▶ handshaking ──Capabilities+Resync──▶ ready
 *   connecting | handshaking | ready ──error / end / keepalive or handshake timeout / bad version──▶ backoff
 *   backoff ──timer (src/internal/backoff.ts: exponential, capped, full jitter)──▶ connecting
 *   any ──stop()──▶ stopped (terminal)
 *
 * How a ready connection ended is kept (`lastReadyEnd`): `graceful` when the executor closed the stream with status
 * OK (it shut down on purpose), `crash` for any other end; the next Resync reports its lost tasks with it.
 * Every dial uses a fresh channel, so a half-open TCP connection to a frozen peer is never reused. What arrives on
 * the stream goes to `onMessage` (stream-inbound.ts), which drives the handshake through `onHello` and
 * `maybeReady`; a connection that is no longer current ignores everything.
 */
import { type ClientDuplexStream, type ServiceError, status as grpcStatus } from '@grpc/grpc-js';
import { backoffDelayMs } from '../internal/backoff.ts';
import { type WireError, WcpError, errorText, toWire } from '../internal/errors.ts';
import { channelCredentialsFor, type TlsMaterial } from '../internal/grpc-tls.ts';
import type { Logger } from '../internal/logger.ts';
import { PROTOCOL_VERSION, type WcpMessageWire, loadExecutorService } from '../taskstream/protocol.ts';
import type { ExecutorMessage } from '../taskstream/validate.ts';
import type { FlowCounters } from './credits.ts';
import type { BridgeEvents } from './events.ts';
import type { BridgeState, LostCause } from './messages.ts';

/** One dialled stream and what the handshake, keepalive, flow control and storage requests learned on it. */
export interface Conn extends FlowCounters {
  gen: number;
  client: { close(): void };
  call: ClientDuplexStream<WcpMessageWire, unknown>;
  dialedAt: number;
  hello: Extract<ExecutorMessage, { kind: 'hello' }> | undefined;
  caps: Extract<ExecutorMessage, { kind: 'capabilities' }> | undefined;
  resynced: boolean;
  /** The handshake finished on it (it became `ready`): tasks may have been sent on it. */
  ready: boolean;
  /** The gRPC status the executor ended the stream with, once it arrived. */
  endStatus: number | undefined;
  /** Every activity this connection's Resync listed (the executor holds them, whoever assigned them). */
  heldAtResync: Set<string>;
  awaitingPong: { nonce: string; sentAt: number } | undefined;
  lastPingAt: number;
  /** StorageRequests being presigned right now (bounded by storage.ts). */
  storageRequests: number;
  /** Set when wcp is closing this connection on purpose (e.g. refused Hello); wins over the stream's own end. */
  fatal: { detail: string; error: WcpError } | undefined;
}

export interface ConnectionOptions {
  /** gRPC target of the executor. */
  endpoint: string;
  /** TLS (mTLS with a client certificate) to the executor; plaintext without. */
  tls?: TlsMaterial;
  /** Name checked against the executor's certificate instead of the endpoint's host. */
  tlsServerName?: string;
  maxMessageBytes: number;
  reconnectBaseMs: number;
  reconnectMaxMs: number;
  keepaliveIntervalMs: number;
  keepaliveTimeoutMs: number;
  /** Dial-to-ready deadline. */
  handshakeTimeoutMs: number;
  /** Announced in HelloAck. */
  wcpVersion: string;
  /** Announced in HelloAck: the executor's one-stream rule knows this wcp by it. */
  workerAddress: string;
  /** Jitter source in [0, 1). */
  random: () => number;
  logger: Logger;
  events: BridgeEvents;
  /** Every decoded message of the current connection (thrown errors are logged and reported as rejections). */
  onMessage(c: Conn, raw: unknown): void;
  /** Called when the connection closed or became ready: the credits on offer may have changed. */
  onCreditsChanged(): void;
  /** Of the executor's activity types, those whose runs need the storage service (they declare outputs). */
  storageTypes?(types: readonly string[]): string[];
}

/** The connection state machine; see the module doc for the transitions. */
export interface Connection {
  state(): BridgeState | 'idle';
  /** The live connection, if any (possibly still handshaking). */
  current(): Conn | undefined;
  /** Dials counted since start. */
  connects(): number;
  lastError(): WireError | undefined;
  /** Whether any connection ever finished its handshake (later Resyncs are always reported). */
  everReady(): boolean;
  /** How the last connection that was ready ended (undefined while none has ended). */
  lastReadyEnd(): LostCause | undefined;
  /** Dials now (idle → connecting). */
  dial(): void;
  /** Handshake deadline and keepalive; called from the bridge's timer. */
  tick(now: number): void;
  /** Writes to `c` if it is still current; a failed write tears it down. Returns whether it was written. */
  write(c: Conn, msg: WcpMessageWire): boolean;
  /**
   * Closes `c` (if current) and schedules a reconnect unless stopped. `how` says whether the executor ended it on
   * purpose (`graceful`: a clean end of stream); anything wcp or the network ends is a `crash`.
   */
  teardown(c: Conn, detail: string, error?: WcpError, how?: LostCause): void;
  /** The executor's Hello: answers HelloAck, or refuses a different protocol version and closes. */
  onHello(c: Conn, m: Extract<ExecutorMessage, { kind: 'hello' }>): void;
  /** Enters `ready` once Capabilities and Resync both arrived. */
  maybeReady(c: Conn): void;
  /** A Pong: true when it answers the outstanding Ping. */
  onPong(c: Conn, nonce: string): boolean;
  /** Terminal: cancels the backoff timer, ends the stream and enters `stopped`. */
  stop(): void;
}

/** An EXECUTOR_PROTOCOL error (the executor broke the protocol; retryable after a reconnect). */
export function protocolError(message: string): WcpError {
  return new WcpError('EXECUTOR_PROTOCOL', message, { retryable: true });
}

export function createConnection(opts: ConnectionOptions): Connection {
  const log = opts.logger;
  const { send, reject } = opts.events;
  const Executor = loadExecutorService();
  // Built once: the material is fixed for the bridge's life, and every dial makes its own channel from it.
  const channelCredentials = channelCredentialsFor(opts.tls);

  let state: BridgeState | 'idle' = 'idle';
  let conn: Conn | undefined;
  let gen = 0;
  let connects = 0;
  let backoffAttempt = 0;
  let backoffTimer: ReturnType<typeof setTimeout> | undefined;
  let lastError: WireError | undefined;
  let lastErrorKey = '';
  let nonce = 0;
  let everReady = false;
  let lastReadyEnd: LostCause | undefined;

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
      ...(types !== undefined && next === 'ready' && opts.storageTypes
        ? { storage_types: opts.storageTypes(types) }
        : {}),
      ...(detail !== undefined ? { detail } : {}),
      ...(error !== undefined ? { error } : {}),
    });
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
      ...(opts.tlsServerName !== undefined ? { 'grpc.ssl_target_name_override': opts.tlsServerName } : {}),
    };
    let client: InstanceType<typeof Executor>;
    let call: ClientDuplexStream<WcpMessageWire, unknown>;
    try {
      client = new Executor(opts.endpoint, channelCredentials, channelOptions);
      call = (client as unknown as { TaskStream(): ClientDuplexStream<WcpMessageWire, unknown> }).TaskStream();
    } catch (e) {
      const err = new WcpError(
        'EXECUTOR_UNAVAILABLE',
        `Cannot dial the executor at ${opts.endpoint}: ${errorText(e)}`,
        {
          retryable: true,
        },
      );
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
      ready: false,
      endStatus: undefined,
      heldAtResync: new Set(),
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
      if (e?.code === grpcStatus.RESOURCE_EXHAUSTED)
        reject(`oversized or excessive message: ${e.details ?? ''}`.slice(0, 300));
      if (e?.code === grpcStatus.FAILED_PRECONDITION && e.details?.startsWith('EXECUTOR_IN_USE')) {
        const detail = e.details.slice(0, 400);
        return teardown(
          c,
          detail,
          new WcpError('EXECUTOR_IN_USE', `The executor refused this wcp: ${detail}`, { retryable: true }),
        );
      }
      teardown(c, `stream error: ${grpcStatus[e?.code] ?? e?.code} ${e?.details ?? e?.message ?? ''}`.trim());
    });
    // grpc-js emits 'status' (after any 'error') before 'end'; an 'end' that finds `c` still current came with OK.
    call.on('status', (st: { code: number }) => {
      c.endStatus = st.code;
    });
    call.on('end', () =>
      c.endStatus === grpcStatus.OK
        ? teardown(c, 'executor closed the stream cleanly (it shut down)', undefined, 'graceful')
        : teardown(c, 'executor closed the stream'),
    );
    call.on('data', (raw: unknown) => {
      try {
        opts.onMessage(c, raw);
      } catch (e) {
        log.error('Executor message handler failed.', { error: errorText(e) });
        reject(`internal error handling message: ${errorText(e)}`.slice(0, 300));
      }
    });
    setState('connecting', `dialing ${opts.endpoint}`);
  }

  function teardown(c: Conn, detail: string, error?: WcpError, how: LostCause = 'crash'): void {
    if (conn !== c) return;
    if (c.fatal !== undefined) {
      detail = c.fatal.detail;
      error = c.fatal.error;
    }
    conn = undefined;
    if (c.ready) lastReadyEnd = c.fatal === undefined ? how : 'crash';
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
    opts.onCreditsChanged();
    if (state === 'stopped') return;
    const wire =
      error !== undefined ? toWire(error) : toWire(new WcpError('EXECUTOR_UNAVAILABLE', detail, { retryable: true }));
    scheduleReconnect(detail, wire);
  }

  function scheduleReconnect(detail: string, error: WireError): void {
    lastError = error;
    const key = `${error.code}:${error.message}`;
    if (error.code === 'EXECUTOR_PROTOCOL' || error.code === 'EXECUTOR_IN_USE') {
      // One clear error per distinct cause; repeats of the same refusal go to debug.
      if (key !== lastErrorKey) log.error(error.message, { code: error.code });
      else log.debug(error.message, { code: error.code });
    }
    lastErrorKey = key;
    backoffAttempt += 1;
    const policy = { baseMs: opts.reconnectBaseMs, maxMs: opts.reconnectMaxMs };
    const delay = Math.max(1, backoffDelayMs(policy, backoffAttempt, opts.random));
    setState('backoff', `${detail}; retrying in ${delay} ms`, error);
    backoffTimer = setTimeout(dial, delay);
  }

  function tick(now: number): void {
    const c = conn;
    if (c === undefined) return;
    if (state !== 'ready' && now - c.dialedAt > opts.handshakeTimeoutMs) {
      const what = c.hello === undefined ? 'no Hello' : c.caps === undefined ? 'no Capabilities' : 'no Resync';
      teardown(c, `handshake timed out after ${opts.handshakeTimeoutMs} ms (${what})`);
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

  function onHello(c: Conn, m: Extract<ExecutorMessage, { kind: 'hello' }>): void {
    c.hello = m;
    setState('handshaking', `executor ${m.executor_id} ${m.executor_version} (protocol v${m.protocol_version})`);
    if (m.protocol_version !== PROTOCOL_VERSION) {
      const reason = `TaskStream protocol mismatch: executor ${m.executor_id} speaks v${m.protocol_version}, this wcp speaks v${PROTOCOL_VERSION}`;
      write(c, {
        hello_ack: {
          protocol_version: PROTOCOL_VERSION,
          wcp_version: opts.wcpVersion,
          accepted: false,
          reason,
          worker_address: opts.workerAddress,
        },
      });
      c.fatal = {
        detail: reason,
        error: protocolError(`${reason}. Upgrade one side so both speak the same major version.`),
      };
      try {
        c.call.end();
      } catch {
        /* closing anyway */
      }
      // Give the refusal a moment to reach the executor before the stream is cancelled.
      setTimeout(() => teardown(c, reason), 250);
      return;
    }
    write(c, {
      hello_ack: {
        protocol_version: PROTOCOL_VERSION,
        wcp_version: opts.wcpVersion,
        accepted: true,
        reason: '',
        acks_completions: true,
        worker_address: opts.workerAddress,
      },
    });
  }

  function maybeReady(c: Conn): void {
    if (state === 'ready' || c.caps === undefined || !c.resynced) return;
    everReady = true;
    c.ready = true;
    backoffAttempt = 0;
    lastErrorKey = '';
    c.lastPingAt = Date.now();
    setState('ready');
    opts.onCreditsChanged();
  }

  function onPong(c: Conn, pongNonce: string): boolean {
    if (c.awaitingPong?.nonce !== pongNonce) return false;
    c.awaitingPong = undefined;
    return true;
  }

  function stop(): void {
    if (state === 'stopped') return;
    if (backoffTimer !== undefined) clearTimeout(backoffTimer);
    backoffTimer = undefined;
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
  }

  return {
    state: () => state,
    current: () => conn,
    connects: () => connects,
    lastError: () => lastError,
    everReady: () => everReady,
    lastReadyEnd: () => lastReadyEnd,
    dial,
    tick,
    write,
    teardown,
    onHello,
    maybeReady,
    onPong,
    stop,
  };
}
