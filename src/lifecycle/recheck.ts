/**
 * The re-check step: chain truth for records whose transaction is no longer in flight, applied with the repair
 * rules (`repair.ts`), then each open record is re-driven (its step done again, or its claim job given back).
 * Periodically it also re-applies the executor's Completions that are not settled yet (`completions.ts`).
 * Records with a tx in flight are skipped everywhere here: their outcome is the settle step's, and facts read
 * before that tx landed are stale.
 */
import type { ActivityFact } from '../chain/facts.ts';
import { readFacts } from '../chain/reads.ts';
import { claimJobKey, inflightKey, PREFIX } from '../store/keys.ts';
import { InflightSchema, LaneTxSchema } from '../store/records.ts';
import type { LifecycleContext } from './context.ts';
import type { FillDetails } from './details.ts';
import type { Finish } from './finish.ts';
import { RECHECK_INTERVAL_MS } from './options.ts';
import { listHeld } from './records.ts';
import { reconcileFacts } from './repair.ts';
import { EXECUTING_STATES, FINISHING_STATES } from './transitions.ts';

/** Lane states of a tx not yet final (the tx manager still re-sends or confirms it). */
const OPEN_LANE_STATES: ReadonlySet<string> = new Set(['reserved', 'sent', 'mined']);

export interface RecheckStep {
  /** Reads the facts of `ids` without a tx in flight and applies them. */
  recheck(ids: string[], why: string): Promise<void>;
  /** Repairs local records from `facts` (those of ids without a tx in flight), then re-drives open records. */
  applyFacts(facts: ActivityFact[], why: string): Promise<void>;
  /** The periodic step: every `RECHECK_INTERVAL_MS`, re-checks claiming, finishing and detail-less records. */
  run(): Promise<void>;
  /** Restarts the period (after the startup re-check). */
  checked(): void;
}

/** The re-check step. */
export function createRecheckStep(
  ctx: Pick<LifecycleContext, 'opts' | 'store' | 'rpc' | 'now' | 'tracker' | 'executor' | 'log' | 'metrics'>,
  deps: {
    finish: Finish;
    fillDetails: FillDetails;
    completions?: () => Promise<void>;
    /** Forget a dispatch scheduled for an id sent back to the claim path. */
    forgetDispatch?: (id: string) => void;
  },
): RecheckStep {
  const { opts, store, rpc, now, tracker, executor, log, metrics } = ctx;
  let lastRunMs = 0;

  async function recheck(ids: string[], why: string): Promise<void> {
    const open = ids.filter((id) => !tracker.has(id));
    if (open.length === 0) return;
    await applyFacts(await readFacts(rpc, opts, open), why);
  }

  /** Ids named by a claim tx of ours still open in the lane (read once per batch, only when a rule asks). */
  function claimsInLane(): (id: string) => boolean {
    let ids: Set<string> | undefined;
    return (id) => {
      if (!ids) {
        ids = new Set();
        for (const { value } of store.list(PREFIX.lane, LaneTxSchema))
          if ((value.kind === 'claim' || value.kind === 'claim_batch') && OPEN_LANE_STATES.has(value.state))
            for (const a of value.activity_ids) ids.add(a);
      }
      return ids.has(id);
    };
  }

  async function applyFacts(facts: ActivityFact[], why: string): Promise<void> {
    // Executing records are snapshotted so a repair that ends one can cancel it at the executor.
    const before = new Map(facts.map((f) => [f.activityId, store.get(inflightKey(f.activityId), InflightSchema)]));
    const inLane = claimsInLane();
    // A scan's facts were read at its pinned block, possibly before our claim landed: sending a record back to the
    // claim path needs a fresh read (the lifecycle's own, at the latest block), so those are re-checked below.
    const fresh: string[] = [];
    const actions = await reconcileFacts(
      store,
      facts.filter((f) => !tracker.has(f.activityId)),
      { wallet: opts.wallet, nowMs: now(), queueName: opts.queueName },
      {
        now,
        // An activity being ended is no longer heartbeated from the moment that is decided: a heartbeat batch
        // naming it that asks for a nonce while the decision commits is withdrawn (`stillWanted`), not signed.
        planned: (id, action) => {
          if (action.type === 'markDone' || action.type === 'requeue') tracker.forgetHeartbeat(id);
        },
        claimInLane: inLane,
        hold: (id, action) => {
          if (action.type !== 'requeue' || why !== 'reconciler') return false;
          fresh.push(id);
          return true;
        },
      },
    );
    for (const { activityId, action } of actions) {
      log.info('repaired from chain', {
        activity_id: activityId,
        action: action.type,
        rule: 'rule' in action ? action.rule : '',
        reason: 'reason' in action ? action.reason : '',
        why,
      });
      if (action.type === 'markDone') {
        metrics.activities.inc({ outcome: action.done.outcome });
        if (action.done.outcome === 'completed' || action.done.outcome === 'failed')
          metrics.completionsSettled.inc({ kind: action.done.outcome === 'completed' ? 'complete' : 'fail' });
        const was = before.get(activityId);
        if (was && EXECUTING_STATES.has(was.state)) executor.cancel(activityId, action.done.outcome);
        tracker.forgetHeartbeat(activityId);
      } else if (action.type === 'requeue') {
        const was = before.get(activityId);
        if (was && EXECUTING_STATES.has(was.state)) executor.cancel(activityId, 'claim gone from the chain');
        tracker.forgetHeartbeat(activityId);
        deps.forgetDispatch?.(activityId);
      }
    }
    for (const f of facts) await redrive(f);
    if (fresh.length) await recheck(fresh, 'reconciler saw a held activity pending');
  }

  /** An open record whose transaction is not in flight: do its step again (or give the job back). */
  async function redrive(f: ActivityFact): Promise<void> {
    const id = f.activityId;
    if (tracker.has(id)) return;
    const r = store.get(inflightKey(id), InflightSchema);
    if (!r) return;
    const ours = f.worker === opts.wallet;
    if (r.state === 'claiming' && f.status === 1 && !f.isExpired) {
      await store.transact((tx) => {
        const cur = tx.get(inflightKey(id), InflightSchema);
        if (cur?.state !== 'claiming') return;
        tx.del(inflightKey(id));
        tx.put(claimJobKey(id), {
          activity_id: id,
          queue_name: cur.queue_name,
          created_at_ms: cur.created_at_ms,
          source: 'reconcile',
        });
      });
      log.info('claim did not land; activity back in the claim queue', { activity_id: id });
    } else if ((r.state === 'completing' || r.state === 'failing') && f.status === 2 && ours && !f.isExpired) {
      await deps.finish.submitFinish(r);
    } else if (r.state === 'resuming' && f.status === 3 && ours && f.workflowResumedPastStep === false) {
      await deps.finish.submitResume(r);
    } else if (r.state === 'claimed' && (r.expires_at_s === undefined || !r.activity_type)) {
      await deps.fillDetails([id]);
    }
  }

  return {
    recheck,
    applyFacts,
    async run() {
      if (now() - lastRunMs < RECHECK_INTERVAL_MS) return;
      lastRunMs = now();
      const ids = listHeld(store)
        .filter(
          (r) =>
            !tracker.has(r.activity_id) &&
            (r.state === 'claiming' || FINISHING_STATES.has(r.state) || (r.state === 'claimed' && !r.activity_type)),
        )
        .map((r) => r.activity_id);
      if (ids.length) await recheck(ids, 'periodic');
      // Completions the executor reported that are not settled yet (issue 14: finished, still only heartbeated).
      await deps.completions?.();
    },
    checked() {
      lastRunMs = now();
    },
  };
}
