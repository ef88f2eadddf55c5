/**
 * New-head notifications from a WebSocket JSON-RPC endpoint (`eth_subscribe` "newHeads", as geth, reth, anvil and
 * the hosted providers serve it). A wake-up signal only: nothing read here is trusted beyond "a block numbered N
 * was announced"; every read and every transaction still goes over the HTTP transport. So a lying or silent
 * endpoint costs at most the push (the caller keeps its own polling), never correctness.
 *
 * States: idle → connecting → subscribed ⇄ backoff (→ connecting) → stopped. A connection that fails, closes, or
 * answers the subscribe with an error is retried after the shared backoff (`HEADS_BACKOFF`), forever: the
 * endpoint may come back. The URL is only ever logged as `displayUrl` (it may carry an API key).
 */
import { type BackoffPolicy, backoffDelayMs } from '../internal/backoff.ts';
import type { Logger } from '../internal/logger.ts';
import { displayUrl } from '../internal/redact.ts';

export type HeadsState = 'idle' | 'connecting' | 'subscribed' | 'backoff' | 'stopped';

/** Reconnect waits: from 1 s, doubling, at most 30 s (full jitter). */
export const HEADS_BACKOFF: BackoffPolicy = { baseMs: 1000, maxMs: 30_000 };

export interface HeadSubscriptionDeps {
  /** ws:// or wss:// endpoint. */
  url: string;
  /** Called once per announced block number (strictly increasing; a repeat or an older number is dropped). */
  onHead(blockNumber: number): void;
  logger: Logger;
  /** Connect + subscribe must complete within this, else the attempt counts as failed. */
  timeoutMs: number;
  backoff?: BackoffPolicy;
  /** Every state change, with the failure's reason on `backoff` (the doctor's probe). */
  onState?(state: HeadsState, reason?: string): void;
}

export interface HeadSubscription {
  start(): void;
  stop(): void;
  status(): { state: HeadsState; heads: number; failures: number; last_head: number };
}

const SUBSCRIBE_ID = 1;

/** The block number of an `eth_subscription` notification for `subId`, or undefined when it is anything else. */
export function headNumber(raw: unknown, subId: string | undefined): number | undefined {
  if (subId === undefined || typeof raw !== 'string' || raw.length > 64_000) return undefined;
  let msg: unknown;
  try {
    msg = JSON.parse(raw);
  } catch {
    return undefined;
  }
  const m = msg as { method?: unknown; params?: { subscription?: unknown; result?: { number?: unknown } } };
  if (m?.method !== 'eth_subscription' || m.params?.subscription !== subId) return undefined;
  const n = m.params.result?.number;
  if (typeof n !== 'string' || !/^0x[0-9a-fA-F]{1,16}$/.test(n)) return undefined;
  const v = Number.parseInt(n, 16);
  return Number.isSafeInteger(v) ? v : undefined;
}

export function createHeadSubscription(deps: HeadSubscriptionDeps): HeadSubscription {
  const log = deps.logger;
  const backoff = deps.backoff ?? HEADS_BACKOFF;
  const where = displayUrl(deps.url);
  let state: HeadsState = 'idle';
  let ws: WebSocket | undefined;
  let subId: string | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let failures = 0;
  let heads = 0;
  let lastHead = -1;

  const setState = (s: HeadsState, reason?: string) => {
    if (s === state) return;
    log.debug('new-head subscription state', { from: state, to: s, endpoint: where });
    state = s;
    deps.onState?.(s, reason);
  };
  const clearTimer = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };

  /** This connection is done for (`why`): close it and try again after the backoff. */
  function fail(socket: WebSocket, why: string) {
    if (socket !== ws || state === 'stopped') return;
    ws = undefined;
    subId = undefined;
    clearTimer();
    try {
      socket.close();
    } catch {
      // already closing
    }
    failures++;
    const wait = Math.max(100, backoffDelayMs(backoff, failures));
    // One warning when a working subscription is lost and every 10th failure after; the rest at debug.
    (failures === 1 || failures % 10 === 0 ? log.warn : log.debug)('new-head subscription down; polling only', {
      endpoint: where,
      reason: why,
      failures,
      retry_in_ms: wait,
    });
    setState('backoff', why);
    timer = setTimeout(connect, wait);
  }

  function connect() {
    timer = undefined;
    if (state === 'stopped') return;
    setState('connecting');
    let socket: WebSocket;
    try {
      socket = new WebSocket(deps.url);
    } catch (e) {
      // A malformed URL is refused by the config; anything else is retried like a failed connect.
      const s = { close() {} } as unknown as WebSocket;
      ws = s;
      fail(s, e instanceof Error ? e.message : String(e));
      return;
    }
    ws = socket;
    timer = setTimeout(() => fail(socket, `no subscription within ${deps.timeoutMs} ms`), deps.timeoutMs);
    socket.onopen = () => {
      if (socket !== ws) return;
      socket.send(JSON.stringify({ jsonrpc: '2.0', id: SUBSCRIBE_ID, method: 'eth_subscribe', params: ['newHeads'] }));
    };
    socket.onmessage = (ev: MessageEvent) => {
      if (socket !== ws) return;
      if (subId === undefined) {
        const reply = parseReply(ev.data);
        if (reply === undefined) return;
        if (typeof reply.result !== 'string') {
          fail(socket, `eth_subscribe refused: ${reply.error ?? 'no subscription id'}`);
          return;
        }
        subId = reply.result;
        clearTimer();
        if (failures > 0) log.info('new-head subscription back', { endpoint: where, after_failures: failures });
        else log.info('new-head subscription up', { endpoint: where });
        failures = 0;
        setState('subscribed');
        return;
      }
      const n = headNumber(ev.data, subId);
      if (n === undefined || n <= lastHead) return;
      lastHead = n;
      heads++;
      deps.onHead(n);
    };
    socket.onerror = () => fail(socket, 'connection error');
    socket.onclose = (ev: CloseEvent) => fail(socket, `closed (${ev.code})`);
  }

  return {
    start() {
      if (state !== 'idle') return;
      if (typeof globalThis.WebSocket !== 'function') {
        // Node before 22 has no WebSocket: say so once and leave polling alone.
        log.warn('this runtime has no WebSocket client; ethereum.ws_url is ignored (polling only)', {
          endpoint: where,
        });
        return;
      }
      connect();
    },
    stop() {
      setState('stopped');
      clearTimer();
      const s = ws;
      ws = undefined;
      try {
        s?.close();
      } catch {
        // already closing
      }
    },
    status: () => ({ state, heads, failures, last_head: lastHead }),
  };
}

/** The reply to our `eth_subscribe` (id 1): its result, or its error text; undefined for any other message. */
function parseReply(raw: unknown): { result?: unknown; error?: string | undefined } | undefined {
  if (typeof raw !== 'string' || raw.length > 64_000) return undefined;
  try {
    const m = JSON.parse(raw) as { id?: unknown; result?: unknown; error?: { message?: unknown } };
    if (m?.id !== SUBSCRIBE_ID) return undefined;
    const error = m.error ? String(m.error.message ?? 'error').slice(0, 200) : undefined;
    return { result: m.result, error };
  } catch {
    return undefined;
  }
}

/**
 * One probe of `url` (the doctor): resolves when the subscription is up or the first attempt failed, naming why.
 */
export function probeHeads(
  url: string,
  timeoutMs: number,
  logger: Logger,
): Promise<{ ok: true } | { ok: false; cause: string }> {
  if (typeof globalThis.WebSocket !== 'function')
    return Promise.resolve({ ok: false, cause: 'this runtime has no WebSocket client' });
  return new Promise((resolve) => {
    const sub = createHeadSubscription({
      url,
      timeoutMs,
      logger,
      onHead: () => {},
      onState: (s, reason) => {
        if (s !== 'subscribed' && s !== 'backoff') return;
        sub.stop();
        resolve(s === 'subscribed' ? { ok: true } : { ok: false, cause: reason ?? 'failed' });
      },
    });
    sub.start();
  });
}
