/**
 * The Poller: visibility only. Every `pollIntervalMs` it reads the first `pollBatch` available activities of the
 * queue (`pollActivities`: one Multicall3 call) and emits them as claim jobs; the supervisor writes them
 * idempotently. It does not consider capacity (the lifecycle claims only what it has room for). On RPC errors
 * it backs off (the shared backoff, never faster than the poll interval, at most `POLL_BACKOFF_MAX_MS`).
 *
 * States: idle → running → stopped.
 */
import { pollActivities } from '../chain/poll.ts';
import type { RpcTransport } from '../chain/transport.ts';
import { backoffDelayMs } from '../internal/backoff.ts';
import { toWire } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import type { ClaimJob } from '../store/records.ts';
import type { PollerEvent } from './messages.ts';
import { POLL_BACKOFF_MAX_MS } from './options.ts';

export type PollerState = 'idle' | 'running' | 'stopped';

export interface Poller {
  start(): void;
  /**
   * A new block was announced: poll now (or right after the round under way). Ignored while backing off from RPC
   * errors: the announcement says the node is alive, not that our endpoint answers.
   */
  newHead(): void;
  /** Resolves when the loop has exited. */
  stop(): Promise<void>;
  status(): { state: PollerState; polls: number; errors: number; last_found: number };
}

export interface PollerDeps {
  rpc: RpcTransport;
  addresses: { taskQueue: string; multicall3: string };
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
  const backoff = { baseMs: 2 * deps.pollIntervalMs, maxMs: Math.max(deps.pollIntervalMs, POLL_BACKOFF_MAX_MS) };
  let state: PollerState = 'idle';
  let polls = 0;
  let errors = 0;
  let consecutive = 0;
  let lastFound = 0;
  let wake: (() => void) | null = null;
  /** A head arrived during a round: run the next one without sleeping. */
  let again = false;
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
      const found = await pollActivities(deps.rpc, deps.addresses, deps.queueName, deps.pollBatch);
      polls++;
      consecutive = 0;
      lastFound = found.length;
      if (found.length > 0) {
        const at = now();
        const jobs: ClaimJob[] = found.map((a) => ({
          activity_id: a.activityId,
          queue_name: deps.queueName,
          created_at_ms: at,
          source: 'poll',
          activity_type: a.activityType,
          input_ref: a.inputRef,
        }));
        deps.emit({ type: 'claimJobs', jobs, polled_at_ms: t0, rpc_ms: at - t0 });
      }
    } catch (e) {
      errors++;
      consecutive++;
      const w = toWire(e);
      if (consecutive === 1 || consecutive % 10 === 0)
        log.warn('poll failed', { error: w.message, code: w.code, consecutive });
      deps.emit({ type: 'pollError', error: w, consecutive });
    }
  }

  async function run(): Promise<void> {
    while (state === 'running') {
      again = false;
      await tick();
      if ((state as PollerState) !== 'running') break;
      if (again && consecutive === 0) continue;
      await sleep(
        consecutive === 0 ? deps.pollIntervalMs : Math.max(deps.pollIntervalMs, backoffDelayMs(backoff, consecutive)),
      );
    }
  }

  return {
    start() {
      if (state !== 'idle') return;
      setState('running');
      log.info('poller started', { queue: deps.queueName, interval_ms: deps.pollIntervalMs, batch: deps.pollBatch });
      loop = run();
    },
    newHead() {
      if (state !== 'running' || consecutive > 0) return;
      if (wake) wake();
      else again = true;
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
