/**
 * The re-check step: chain truth for records whose transaction is no longer in flight, applied with the repair
 * rules (`repair.ts`), then each open record is re-driven (`decideRedrive`, PURE: its step done again, or its claim
 * job given back). It returns what follows as effects, for the runner; it calls no other step. Records with a tx in
 * flight are skipped everywhere here: their outcome is the settle step's, and facts read before that tx landed are
 * stale.
 */
import type { ActivityFact } from '../chain/facts.ts';
import { readFacts } from '../chain/reads.ts';
import { ActivityStatus } from '../chain/abi.ts';
import { inflightKey, PREFIX } from '../store/keys.ts';
import { type Inflight, InflightSchema, LaneTxSchema } from '../store/records.ts';
import type { LifecycleContext } from './context.ts';
import { type Decision, type Effect, effects, finishCall, NOTHING } from './effects.ts';
import { decideResume } from './finish.ts';
import { RECHECK_INTERVAL_MS } from './options.ts';
import { commit, listHeld, OPEN_LANE_STATES } from './records.ts';
import { reconcileFacts } from './repair.ts';
import { EXECUTING_STATES, FINISH_TX_STATES, FINISHING_STATES } from './transitions.ts';

export interface RecheckStep {
  /** Reads the facts of `ids` without a tx in flight, applies them, and returns what follows. */
  recheck(ids: string[], why: string): Promise<Effect[]>;
  /** Repairs local records from `facts` (those of ids without a tx in flight), re-drives open records, and
   * returns what follows. */
  applyFacts(facts: ActivityFact[], why: string): Promise<Effect[]>;
  /** The periodic re-check, every `RECHECK_INTERVAL_MS` (undefined when not due): claiming, finishing and
   * detail-less records. */
  periodic(): Effect[] | undefined;
  /** Restarts the period (after the startup re-check). */
  checked(): void;
}

/** What a re-drive reads besides the record and the fact. */
export interface RedriveFacts {
  wallet: string;
  nowMs: number;
  /** A claim/complete/fail/resume tx is in flight for the id. */
  inFlight: boolean;
}

/** An open record whose transaction is not in flight, against a fresh fact: its step done again, or its job given
 * back to the claim path. PURE. */
export function decideRedrive(r: Inflight | undefined, f: ActivityFact, x: RedriveFacts): Decision {
  if (!r || x.inFlight) return NOTHING;
  const id = f.activityId;
  const ours = f.worker === x.wallet;
  if (r.state === 'claiming' && f.status === ActivityStatus.Pending && !f.isExpired)
    return {
      writes: [
        {
          kind: 'requeue',
          job: { activity_id: id, queue_name: r.queue_name, created_at_ms: r.created_at_ms, source: 'reconcile' },
        },
      ],
      effects: [
        {
          kind: 'log',
          level: 'info',
          message: 'claim did not land; activity back in the claim queue',
          fields: { activity_id: id },
        },
      ],
    };
  if (FINISH_TX_STATES.has(r.state) && f.status === ActivityStatus.Claimed && ours && !f.isExpired) {
    const call = finishCall(r);
    return call ? effects(call) : NOTHING;
  }
  if (r.state === 'resuming' && f.status === ActivityStatus.Completed && ours && f.workflowResumedPastStep === false)
    return decideResume(r, x.nowMs);
  if (r.state === 'claimed' && (r.expires_at_s === undefined || !r.activity_type))
    return effects({ kind: 'fillDetails', ids: [id] });
  return NOTHING;
}

/** The re-check step. */
export function createRecheckStep(
  ctx: Pick<LifecycleContext, 'opts' | 'store' | 'rpc' | 'now' | 'tracker' | 'log' | 'metrics'>,
): RecheckStep {
  const { opts, store, rpc, now, tracker, log, metrics } = ctx;
  let lastRunMs = 0;

  async function recheck(ids: string[], why: string): Promise<Effect[]> {
    const open = ids.filter((id) => !tracker.has(id));
    if (open.length === 0) return [];
    return await applyFacts(await readFacts(rpc, opts, open), why);
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

  async function applyFacts(facts: ActivityFact[], why: string): Promise<Effect[]> {
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
          if (action.type === 'markDone' || action.type === 'requeue') tracker.heartbeats.forget(id);
        },
        claimInLane: inLane,
        hold: (id, action) => {
          if (action.type !== 'requeue' || why !== 'reconciler') return false;
          fresh.push(id);
          return true;
        },
      },
    );
    const out: Effect[] = [];
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
        if (was && EXECUTING_STATES.has(was.state))
          out.push({ kind: 'cancel', id: activityId, reason: action.done.outcome });
        out.push({ kind: 'forget', id: activityId, what: 'heartbeat' });
      } else if (action.type === 'requeue') {
        const was = before.get(activityId);
        if (was && EXECUTING_STATES.has(was.state))
          out.push({ kind: 'cancel', id: activityId, reason: 'claim gone from the chain' });
        out.push(
          { kind: 'forget', id: activityId, what: 'heartbeat' },
          { kind: 'forget', id: activityId, what: 'dispatch' },
        );
      }
    }
    for (const f of facts) {
      const id = f.activityId;
      const x = { wallet: opts.wallet, nowMs: now(), inFlight: tracker.has(id) };
      if (x.inFlight || !store.has(inflightKey(id))) continue;
      out.push(...(await commit(store, [id], (rs) => decideRedrive(rs.get(id), f, x))).effects);
    }
    if (fresh.length) out.push({ kind: 'recheck', ids: fresh, why: 'reconciler saw a held activity pending' });
    return out;
  }

  return {
    recheck,
    applyFacts,
    periodic() {
      if (now() - lastRunMs < RECHECK_INTERVAL_MS) return undefined;
      lastRunMs = now();
      const ids = listHeld(store)
        .filter(
          (r) =>
            !tracker.has(r.activity_id) &&
            (r.state === 'claiming' || FINISHING_STATES.has(r.state) || (r.state === 'claimed' && !r.activity_type)),
        )
        .map((r) => r.activity_id);
      return ids.length ? [{ kind: 'recheck', ids, why: 'periodic' }] : [];
    },
    checked() {
      lastRunMs = now();
    },
  };
}
