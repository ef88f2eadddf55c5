/**
 * What the storage service says, told to the supervisor as `storage` events on every change (claims of work that
 * needs storage wait, and claimed work waits to be dispatched, while it is not `up`). Every presign the bridge
 * makes goes through `watch(broker)`, so each outcome is evidence, judged by `classifyStorageFailure`
 * (src/storage/refusal.ts): a URL, or a refusal about one activity's data, means `up`; an unreachable service
 * `down`; a refusal of the worker itself (not the storage service, its session refused …) `refused`, with the
 * reason. While not `up`, a probe presign runs on the shared backoff rule (src/internal/backoff.ts) until the
 * service answers as it should; one probe at start learns the initial state. The probe asks for an object of no
 * activity this worker holds: a URL or a PERMISSION_DENIED is the expected answer (logged at debug only).
 */
import { backoffDelayMs } from '../internal/backoff.ts';
import { errorText } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import { classifyStorageFailure, type StorageRefusalReason } from '../storage/refusal.ts';
import type { BridgeEvents } from './events.ts';
import type { StorageBrokerLike } from './storage.ts';

/** The storage service as the bridge last saw it. */
export type StorageState = 'up' | 'down' | 'refused';

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
  state(): StorageState | undefined;
  /** Why the service refuses the worker, while `refused`. */
  refusal(): StorageRefusalReason | undefined;
}

/** The probe asks for a GET URL of this key; a refusal about the object is as good as a URL (the service answered). */
export const PROBE = { activityId: '0', key: 'wcp-storage-probe' } as const;

/** The state a presign outcome (`undefined`: a URL) shows, and the refusal's reason. */
export function stateOf(e: unknown): { state: StorageState; reason?: StorageRefusalReason } | undefined {
  if (e === undefined) return { state: 'up' };
  const f = classifyStorageFailure(e);
  if (f.kind === 'unsettled') return undefined; // the service was not asked
  if (f.kind === 'activity') return { state: 'up' };
  if (f.kind === 'worker') return { state: 'refused', reason: f.reason };
  return { state: 'down' };
}

export function createStorageHealth(opts: StorageHealthOptions): StorageHealth {
  const log = opts.logger;
  const policy = { baseMs: opts.probeBaseMs ?? 1000, maxMs: opts.probeMaxMs ?? 10_000 };
  let state: StorageState | undefined;
  let reason: StorageRefusalReason | undefined;
  let failures = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  let probing = false;
  let watched: StorageBrokerLike | undefined;

  function set(next: StorageState, why: StorageRefusalReason | undefined, detail?: string): void {
    if (next === 'up') failures = 0;
    if (state === next && reason === why) return;
    const was = state;
    state = next;
    reason = why;
    if (next === 'up') {
      if (was !== undefined) log.info('Storage service answers again.');
    } else if (next === 'refused') log.warn('Storage service refuses this worker.', { reason: why, detail });
    else log.warn('Storage service unavailable.', { detail });
    opts.events.send({
      type: 'storage',
      available: next === 'up',
      ...(why !== undefined ? { refused: why } : {}),
      ...(detail !== undefined ? { detail } : {}),
    });
    if (next !== 'up') schedule();
  }

  function observe(e: unknown): void {
    const seen = stateOf(e);
    if (seen === undefined) return;
    set(seen.state, seen.reason, e === undefined || seen.state === 'up' ? undefined : errorText(e).slice(0, 300));
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
        probe: true,
      })
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => {
        probing = false;
        if (state !== 'up') schedule();
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
    state: () => state,
    refusal: () => reason,
  };
}
