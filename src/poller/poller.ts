/**
 * The Poller: visibility only. Every `pollIntervalMs` it reads the first `pollBatch` available activities of the
 * queue (`pollActivity(queue, 0..n-1)` in one Multicall3 call) and emits them as claim jobs; the supervisor
 * writes them idempotently. It does not consider capacity; the supervisor pauses it when the backlog is full.
 * On RPC errors it backs off exponentially (capped) and keeps going.
 *
 * States: idle → running ⇄ paused → stopped.
 */
import type { ChainReader } from '../chain/reader.ts';
import { toWire } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import type { ClaimJob } from '../store/records.ts';
import type { PollerEvent } from '../supervisor/messages.ts';

export type PollerState = 'idle' | 'running' | 'paused' | 'stopped';

export interface Poller {
  start(): void;
  pause(): void;
  resume(): void;
  pollNow(): void;
  /** Resolves when the loop has exited. */
  stop(): Promise<void>;
  status(): { state: PollerState; polls: number; errors: number; last_found: number };
}

export interface PollerDeps {
  reader: Pick<ChainReader, 'pollActivities'>;
  queueName: string;
  pollBatch: number;
  pollIntervalMs: number;
  logger: Logger;
  emit: (ev: PollerEvent) => void;
  now?: () => number;
}

export function createPoller(deps: PollerDeps): Poller {
  const now = deps.now ?? Date.now;
  const log = deps.logger;
  let state: PollerState = 'idle';
  let polls = 0;
  let errors = 0;
  let consecutive = 0;
  let lastFound = 0;
  let wake: (() => void) | null = null;
  let loop: Promise<void> = Promise.resolve();

  const setState = (s: PollerState) => {
    if (s === state) return;
    log.debug('poller state', { from: state, to: s });
    state = s;
  };

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        wake = null;
        resolve();
      }, ms);
      wake = () => {
        clearTimeout(t);
        wake = null;
        resolve();
      };
    });

  async function tick(): Promise<void> {
    const t0 = now();
    try {
      const found = await deps.reader.pollActivities(deps.queueName, deps.pollBatch);
      polls++;
      consecutive = 0;
      lastFound = found.length;
      if (found.length > 0) {
        const at = now();
        const jobs: ClaimJob[] = found.map((a) => ({ activity_id: a.activityId, queue_name: deps.queueName, created_at_ms: at, source: 'poll' }));
        deps.emit({ type: 'claimJobs', jobs, polled_at_ms: t0, rpc_ms: at - t0 });
      }
    } catch (e) {
      errors++;
      consecutive++;
      const w = toWire(e);
      if (consecutive === 1 || consecutive % 10 === 0) log.warn('poll failed', { error: w.message, code: w.code, consecutive });
      deps.emit({ type: 'pollError', error: w, consecutive });
    }
  }

  async function run(): Promise<void> {
    while (state === 'running' || state === 'paused') {
      if (state === 'running') await tick();
      if ((state as PollerState) === 'stopped') break;
      const backoff = consecutive === 0 ? deps.pollIntervalMs : Math.min(deps.pollIntervalMs * 2 ** Math.min(consecutive, 6), 30_000);
      await sleep(backoff);
    }
  }

  return {
    start() {
      if (state !== 'idle') return;
      setState('running');
      log.info('poller started', { queue: deps.queueName, interval_ms: deps.pollIntervalMs, batch: deps.pollBatch });
      loop = run();
    },
    pause() {
      if (state === 'running') setState('paused');
    },
    resume() {
      if (state === 'paused') {
        setState('running');
        wake?.();
      }
    },
    pollNow() {
      wake?.();
    },
    async stop() {
      if (state === 'stopped') return loop;
      setState('stopped');
      wake?.();
      await loop;
    },
    status: () => ({ state, polls, errors, last_found: lastFound }),
  };
}
