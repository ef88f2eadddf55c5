/**
 * Discovery, as the supervisor applies it: claim jobs the poller found or the reconciler's event follower saw are
 * recorded in the store (and wake the lifecycle); the reconciler's facts go to the lifecycle's repair; a reorg drops
 * the claim jobs learned from replaced blocks and rescans what we hold or recently ended; checkpoints are persisted.
 */
import { errorText, toWire } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import type { Metrics } from '../internal/metrics.ts';
import type { ActivityManager } from '../lifecycle/manager.ts';
import type { PollerEvent } from '../poller/messages.ts';
import type { ReconcilerEvent } from '../reconciler/messages.ts';
import { claimJobKey, LAST_SCAN_BLOCK, PREFIX } from '../store/keys.ts';
import { ClaimJobSchema, DoneSchema, InflightSchema } from '../store/records.ts';
import type { Store } from '../store/store.ts';
import { recordClaimJobs } from './claim-jobs.ts';

/** Done records this recent are read again after a reorg (a reorg deeper than this window is not expected). */
export const REORG_DONE_RECHECK_MS = 30 * 60_000;

export interface DiscoveryView {
  /** The last poll round that found work (a round finding nothing sends nothing), and the last failed one. */
  last_found: { at_ms: number; activities: number } | null;
  last_poll_error: { at_ms: number; error: string } | null;
  last_scan: { at_ms: number; reason: string; from_block: number; to_block: number; facts: number } | null;
  heads: { state: string; heads: number; failures: number; last_head: number } | null;
}

export interface DiscoveryDeps {
  store: Store;
  metrics: Metrics;
  log: Logger;
  /** The activity manager once started (observe mode has none). */
  manager(): ActivityManager | undefined;
  /** Asks the reconciler to read these held activities again (after a reorg). */
  rescan(ids: string[]): void;
  /** The reconciler's startup scan is done: claims may start. */
  onStartupScanDone(): void;
}

/** The handlers of the poller's and the reconciler's events. */
export function createDiscovery(deps: DiscoveryDeps): {
  onPollerEvent(ev: PollerEvent): void;
  onReconcilerEvent(ev: ReconcilerEvent): void;
  /** The last poll round and scan, and the new-head feed, for the operator's page. */
  view(): DiscoveryView;
} {
  const { store, metrics, log } = deps;
  const seen: DiscoveryView = { last_found: null, last_poll_error: null, last_scan: null, heads: null };
  /** A failed store write or apply is logged with the error's code; the next event or scan tries again. */
  const failed = (what: string) => (e: unknown) => log.error(what, { code: toWire(e).code, error: errorText(e) });
  function onPollerEvent(ev: PollerEvent) {
    switch (ev.type) {
      case 'claimJobs': {
        seen.last_found = { at_ms: ev.polled_at_ms, activities: ev.jobs.length };
        const jobs = ev.jobs;
        void recordClaimJobs(store, jobs)
          .then((added) => {
            metrics.polls.inc({ result: 'found' });
            metrics.pollToRecordMs.observe(Date.now() - ev.polled_at_ms);
            if (added.length > 0) {
              metrics.claimJobsRecorded.inc({ source: 'poll' }, added.length);
              log.info('claim jobs recorded', {
                count: added.length,
                activity_ids: added.map((j) => j.activity_id).join(','),
              });
              deps.manager()?.kick();
            }
          })
          .catch(failed('recording claim jobs failed'));
        break;
      }
      case 'pollError':
        seen.last_poll_error = { at_ms: Date.now(), error: ev.error.message };
        metrics.polls.inc({ result: 'error' });
        break;
      case 'heads': {
        const { type: _t, ...heads } = ev;
        seen.heads = heads;
        break;
      }
      case 'stopped':
        log.debug('poller stopped');
        break;
    }
  }

  function onReconcilerEvent(ev: ReconcilerEvent) {
    switch (ev.type) {
      case 'enqueued':
        void recordClaimJobs(store, ev.jobs)
          .then((added) => {
            if (added.length === 0) return;
            metrics.claimJobsRecorded.inc({ source: 'event' }, added.length);
            log.info('claim jobs recorded from events', {
              count: added.length,
              activity_ids: added.map((j) => j.activity_id).join(','),
            });
            deps.manager()?.kick();
          })
          .catch(failed('recording claim jobs failed'));
        break;
      case 'facts':
        seen.last_scan = {
          at_ms: Date.now(),
          reason: ev.reason,
          from_block: ev.window.fromBlock,
          to_block: ev.window.toBlock,
          facts: ev.facts.length,
        };
        void deps.manager()?.onFacts(ev.facts).catch(failed('applying reconciler facts failed'));
        log.info('reconciler scan', {
          reason: ev.reason,
          facts: ev.facts.length,
          from_block: ev.window.fromBlock,
          to_block: ev.window.toBlock,
        });
        break;
      case 'reorg': {
        // Claim jobs learned from replaced blocks are suspect: drop them; the follower re-ingests real ones.
        void store
          .transact((tx) => {
            let n = 0;
            for (const { value } of store.list(PREFIX.claimJob, ClaimJobSchema)) {
              if (value.source === 'event' && (value.block_number ?? 0) >= ev.forkBlock) {
                tx.del(claimJobKey(value.activity_id));
                n++;
              }
            }
            return n;
          })
          .then((n) =>
            log.warn('chain reorg detected', { fork_block: ev.forkBlock, dropped_claim_jobs: n, detail: ev.detail }),
          )
          .catch(failed('dropping reorged claim jobs failed'));
        // Rescan, reading every activity we hold too: the chain may no longer say it is ours (our claim gone,
        // someone else's in its place), and no event of ours would name it any more. Recently ended ones too: the
        // completion, expiry or foreign claim their done record rests on may be gone (the repair puts them back).
        if (deps.manager()) {
          const held = store.list(PREFIX.inflight, InflightSchema).map((e) => e.value.activity_id);
          const since = Date.now() - REORG_DONE_RECHECK_MS;
          const ended = store
            .list(PREFIX.done, DoneSchema)
            .filter((e) => e.value.finished_at_ms >= since)
            .map((e) => e.value.activity_id);
          deps.rescan([...held, ...ended]);
        }
        break;
      }
      case 'checkpoint':
        void store
          .transact((tx) =>
            tx.put(LAST_SCAN_BLOCK, {
              block_number: ev.block_number,
              block_hash: ev.block_hash,
              updated_at_ms: Date.now(),
            }),
          )
          .catch(failed('persisting the scan checkpoint failed'));
        break;
      case 'startupScanDone':
        log.info('startup scan done; claims enabled', { to_block: ev.toBlock });
        deps.onStartupScanDone();
        break;
      case 'error':
        log.warn('reconciler error', { code: ev.error.code, error: ev.error.message });
        break;
      case 'stopped':
        break;
    }
  }
  return { onPollerEvent, onReconcilerEvent, view: () => structuredClone(seen) };
}
