/**
 * Whether the storage service answers, told to the supervisor as `storage` events on every change (claims of work
 * that needs storage wait while it does not). Every presign the bridge makes goes through `watch(broker)`, so each
 * outcome is evidence: a success, or a refusal (the service answered), means available; a STORAGE_UNAVAILABLE
 * failure (or any error without a code) means not. While unavailable, a probe presign runs on the shared backoff
 * rule (src/internal/backoff.ts) until one answers. One probe at start learns the initial state.
 */
import { backoffDelayMs } from '../internal/backoff.ts';
import { errorText } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import type { BridgeEvents } from './events.ts';
import type { StorageBrokerLike } from './storage.ts';

export interface StorageHealthOptions {
  events: BridgeEvents;
  logger: Logger;
  /** First probe delay after a failure (default 1000). */
  probeBaseMs?: number;
  /** Longest probe delay (default 10000). */
  probeMaxMs?: number;
  random?: () => number;
}

/** Storage availability for one bridge. */
export interface StorageHealth {
  /** A broker whose every presign outcome feeds the availability. */
  watch(broker: StorageBrokerLike): StorageBrokerLike;
  /** Probes once now (the initial state); needs `watch` first. */
  start(): void;
  stop(): void;
  /** The last known state; undefined before anything was learned. */
  available(): boolean | undefined;
}

/** The probe asks for a GET URL of this key; a refusal is as good as a URL (the service answered). */
export const PROBE = { activityId: '0', key: 'wcp-storage-probe' } as const;

/** Whether a presign error means the storage service could not be reached (rather than that it refused). */
export function isUnreachable(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code !== 'string' || code === 'STORAGE_UNAVAILABLE';
}

export function createStorageHealth(opts: StorageHealthOptions): StorageHealth {
  const log = opts.logger;
  const policy = { baseMs: opts.probeBaseMs ?? 1000, maxMs: opts.probeMaxMs ?? 10_000 };
  let state: boolean | undefined;
  let failures = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  let probing = false;
  let watched: StorageBrokerLike | undefined;

  function set(next: boolean, detail?: string): void {
    if (next) failures = 0;
    if (state === next) return;
    state = next;
    if (next) log.info('Storage service answers again.');
    else log.warn('Storage service unavailable.', { detail });
    opts.events.send({ type: 'storage', available: next, ...(detail !== undefined ? { detail } : {}) });
    if (!next) schedule();
  }

  function observe(e: unknown): void {
    if (e === undefined || !isUnreachable(e)) return set(true);
    set(false, errorText(e).slice(0, 300));
  }

  function schedule(): void {
    if (stopped || timer !== undefined || probing) return;
    failures += 1;
    timer = setTimeout(
      () => {
        timer = undefined;
        probe();
      },
      Math.max(50, backoffDelayMs(policy, failures, opts.random ?? Math.random)),
    );
  }

  function probe(): void {
    if (stopped || watched === undefined || probing) return;
    probing = true;
    watched
      .presign({
        activityId: PROBE.activityId,
        actingActivityId: PROBE.activityId,
        key: PROBE.key,
        method: 'GET',
        ttlSeconds: 60,
      })
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => {
        probing = false;
        if (state === false) schedule();
      });
  }

  return {
    watch(broker) {
      watched = {
        presign: async (p) => {
          try {
            const g = await broker.presign(p);
            if (!stopped) observe(undefined);
            return g;
          } catch (e) {
            if (!stopped) observe(e);
            throw e;
          }
        },
        close: () => broker.close(),
      };
      return watched;
    },
    start: probe,
    stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
    available: () => state,
  };
}
