import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import * as v from 'valibot';
import type { ActivityStatusCode } from '../chain/abi.ts';
import {
  ClaimJobSchema,
  DoneSchema,
  InflightSchema,
  type Done,
  type Inflight,
  type InflightState,
} from '../store/records.ts';
import type { ActivityFact } from '../chain/facts.ts';
import { applyToLocal, type LocalRecords, planRepair, type RepairContext } from './repair.ts';

const WALLET = '0x70997970c51812dc3a04c251d1b0d1f1f1f1f1f1';
const OTHER = '0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc';
const ZERO = '0x0000000000000000000000000000000000000000';
const ctx: RepairContext = {
  wallet: WALLET.toUpperCase().replace('0X', '0x'),
  nowMs: 1_700_000_000_000,
  queueName: 'q',
};

function fact(over: Partial<ActivityFact> = {}): ActivityFact {
  return {
    activityId: '5',
    exists: true,
    queue: 'q',
    workflowInstance: '0',
    stepIndex: 0,
    activityType: 'echo',
    inputRef: 'in',
    status: 2,
    worker: WALLET,
    enqueuedAtS: 100,
    claimedAtS: 110,
    lastHeartbeatAtS: 120,
    heartbeatTimeoutS: 60,
    expiresAtS: 10_000,
    finishedAtS: 0,
    isCompleted: false,
    isExpired: false,
    resultRef: '',
    nowS: 130,
    blockNumber: 9,
    ...over,
  };
}
function inflight(state: InflightState, over: Partial<Inflight> = {}): Inflight {
  return {
    activity_id: '5',
    state,
    queue_name: 'q',
    dispatch_attempts: 0,
    created_at_ms: 1,
    updated_at_ms: 1,
    ...over,
  };
}

const STATES: InflightState[] = ['claiming', 'claimed', 'assigned', 'running', 'completing', 'failing', 'resuming'];

const arbFact = fc
  .record({
    status: fc.constantFrom<ActivityStatusCode>(0, 1, 2, 3, 4),
    worker: fc.constantFrom(WALLET, OTHER, ZERO),
    isExpired: fc.boolean(),
    workflowInstance: fc.constantFrom('0', '7'),
    resumed: fc.constantFrom<boolean | undefined>(true, false, undefined),
    resultRef: fc.constantFrom('', 'r1', 'r2'),
    finishedAtS: fc.constantFrom(0, 200),
  })
  .map((r) => {
    const f = fact({
      status: r.status,
      exists: r.status !== 0,
      worker: r.status <= 1 ? ZERO : r.worker,
      isExpired: r.status === 1 || r.status === 2 ? r.isExpired : false,
      isCompleted: r.status === 3,
      workflowInstance: r.workflowInstance,
      resultRef: r.resultRef,
      finishedAtS: r.status >= 3 ? r.finishedAtS : 0,
    });
    if (r.resumed !== undefined && r.status === 3 && r.workflowInstance !== '0') f.workflowResumedPastStep = r.resumed;
    return f;
  });

const arbLocal: fc.Arbitrary<LocalRecords> = fc
  .record({
    claimJob: fc.boolean(),
    claimInLane: fc.boolean(),
    inflight: fc.option(
      fc.record({
        state: fc.constantFrom(...STATES),
        result_ref: fc.option(fc.constantFrom('r1', 'x'), { nil: undefined }),
      }),
      { nil: undefined },
    ),
    done: fc.option(
      fc.record({
        outcome: fc.constantFrom<Done['outcome']>('completed', 'failed', 'lost', 'expired', 'finished_elsewhere'),
        resumed: fc.option(fc.boolean(), { nil: undefined }),
        result_ref: fc.option(fc.constantFrom('r1', 'r2'), { nil: undefined }),
      }),
      { nil: undefined },
    ),
  })
  .map((r) => {
    const l: LocalRecords = {};
    if (r.claimJob) l.claimJob = { activity_id: '5', queue_name: 'q', created_at_ms: 1, source: 'event' };
    if (r.claimInLane) l.claimInLane = true;
    if (r.inflight)
      l.inflight = inflight(
        r.inflight.state,
        r.inflight.result_ref === undefined ? {} : { result_ref: r.inflight.result_ref },
      );
    if (r.done) {
      const d: Done = { activity_id: '5', outcome: r.done.outcome, finished_at_ms: 5 };
      if (r.done.resumed !== undefined) d.resumed = r.done.resumed;
      if (r.done.result_ref !== undefined) d.result_ref = r.done.result_ref;
      l.done = d;
    }
    return l;
  });

describe('planRepair', () => {
  test('property: one repair reaches a fixed point (planRepair on the repaired state is none)', () => {
    fc.assert(
      fc.property(arbFact, arbLocal, fc.boolean(), (f, local, resumeWorkflows) => {
        const c = { ...ctx, resumeWorkflows };
        const a1 = planRepair(f, local, c);
        const l1 = applyToLocal(local, a1);
        expect(planRepair(f, l1, { ...c, nowMs: c.nowMs + 5_000 })).toEqual({ type: 'none' });
        // Applying the same action twice changes nothing more.
        expect(applyToLocal(l1, a1)).toEqual(l1);
      }),
      { numRuns: 3_000 },
    );
  });

  test('property: written records validate against the store schemas', () => {
    fc.assert(
      fc.property(arbFact, arbLocal, (f, local) => {
        const a = planRepair(f, local, ctx);
        if (a.type === 'rebuildInflight') expect(v.safeParse(InflightSchema, a.inflight).success).toBe(true);
        if (a.type === 'markDone') expect(v.safeParse(DoneSchema, a.done).success).toBe(true);
        if (a.type === 'requeue') expect(v.safeParse(ClaimJobSchema, a.claimJob).success).toBe(true);
      }),
      { numRuns: 1_000 },
    );
  });

  test('property: an activity someone else holds or finished never becomes ours locally', () => {
    fc.assert(
      fc.property(arbFact, arbLocal, (f, local) => {
        fc.pre(f.status >= 2 && f.worker === OTHER);
        const a = planRepair(f, local, ctx);
        expect(a.type === 'rebuildInflight').toBe(false);
      }),
    );
  });

  test('claimed by us, live, no local record → inflight claimed rebuilt from the fact', () => {
    const a = planRepair(fact(), {}, ctx);
    expect(a.type).toBe('rebuildInflight');
    if (a.type !== 'rebuildInflight') return;
    expect(a.inflight).toMatchObject({
      state: 'claimed',
      activity_id: '5',
      input_ref: 'in',
      expires_at_s: 10_000,
      last_heartbeat_s: 120,
      heartbeat_timeout_s: 60,
    });
  });

  test('claiming locally, claim confirmed on chain → claimed, keeps created_at and dispatch count', () => {
    const a = planRepair(fact(), { inflight: inflight('claiming', { created_at_ms: 42, dispatch_attempts: 2 }) }, ctx);
    expect(
      a.type === 'rebuildInflight' &&
        a.inflight.state === 'claimed' &&
        a.inflight.created_at_ms === 42 &&
        a.inflight.dispatch_attempts === 2,
    ).toBe(true);
  });

  test('live local states are left to the lifecycle; a stray claim job is dropped', () => {
    for (const s of ['claimed', 'assigned', 'running', 'completing', 'failing'] as const) {
      expect(planRepair(fact(), { inflight: inflight(s) }, ctx)).toEqual({ type: 'none' });
    }
    const claimJob = { activity_id: '5', queue_name: 'q', created_at_ms: 1, source: 'poll' as const };
    expect(planRepair(fact(), { inflight: inflight('running'), claimJob }, ctx).type).toBe('dropClaimJob');
  });

  test('completed by us, standalone → done completed, resumed (not needed), inflight cleaned', () => {
    const a = planRepair(
      fact({ status: 3, isCompleted: true, resultRef: 'out', finishedAtS: 200 }),
      { inflight: inflight('completing') },
      ctx,
    );
    expect(a).toMatchObject({
      type: 'markDone',
      deleteInflight: true,
      done: { outcome: 'completed', resumed: true, result_ref: 'out', finished_at_ms: 200_000 },
    });
  });

  test('completed by us, workflow waiting → inflight resuming; once resumed → done resumed', () => {
    const f = fact({
      status: 3,
      isCompleted: true,
      resultRef: 'out',
      workflowInstance: '7',
      workflowResumedPastStep: false,
    });
    const a = planRepair(f, {}, ctx);
    expect(a).toMatchObject({
      type: 'rebuildInflight',
      inflight: { state: 'resuming', result_ref: 'out', workflow_instance: '7' },
    });
    expect(planRepair(f, {}, { ...ctx, resumeWorkflows: false })).toMatchObject({
      type: 'markDone',
      done: { resumed: false },
    });
    const after = planRepair({ ...f, workflowResumedPastStep: true }, { inflight: inflight('resuming') }, ctx);
    expect(after).toMatchObject({
      type: 'markDone',
      deleteInflight: true,
      done: { outcome: 'completed', resumed: true },
    });
  });

  test('failed by us → done failed with the chain reason', () => {
    expect(planRepair(fact({ status: 4, resultRef: 'boom' }), { inflight: inflight('failing') }, ctx)).toMatchObject({
      type: 'markDone',
      done: { outcome: 'failed', reason: 'boom' },
    });
  });

  test('claimed by someone else → our claim is lost', () => {
    const claimJob = { activity_id: '5', queue_name: 'q', created_at_ms: 1, source: 'poll' as const };
    expect(planRepair(fact({ worker: OTHER }), { claimJob, inflight: inflight('claiming') }, ctx)).toMatchObject({
      type: 'markDone',
      deleteClaimJob: true,
      deleteInflight: true,
      done: { outcome: 'lost' },
    });
    expect(planRepair(fact({ worker: OTHER }), {}, ctx)).toEqual({ type: 'none' });
  });

  test('ours and expired → done expired, whatever the local state', () => {
    expect(planRepair(fact({ isExpired: true }), {}, ctx)).toMatchObject({
      type: 'markDone',
      done: { outcome: 'expired', finished_at_ms: 180_000 },
    });
    expect(planRepair(fact({ isExpired: true }), { inflight: inflight('running') }, ctx)).toMatchObject({
      type: 'markDone',
      deleteInflight: true,
    });
  });

  test('local done completed but chain still claimed by us → re-send the complete', () => {
    const a = planRepair(
      fact(),
      { done: { activity_id: '5', outcome: 'completed', result_ref: 'r', finished_at_ms: 1 } },
      ctx,
    );
    expect(a).toMatchObject({
      type: 'rebuildInflight',
      deleteDone: true,
      inflight: { state: 'completing', result_ref: 'r' },
    });
  });

  test('pending again while held (our claim reorged away, no claim tx of ours in the lane) → back to the claim path', () => {
    const pending = fact({ status: 1, worker: ZERO, claimedAtS: 0 });
    for (const s of ['claimed', 'assigned', 'running', 'completing', 'failing', 'resuming'] as const) {
      const a = planRepair(pending, { inflight: inflight(s, { created_at_ms: 42 }) }, ctx);
      expect(a).toMatchObject({
        type: 'requeue',
        rule: 'R1b',
        deleteInflight: true,
        claimJob: { activity_id: '5', queue_name: 'q', source: 'reconcile', created_at_ms: 42 },
      });
    }
    // A claim tx of ours still open in the lane is re-mined by the tx manager: left to it.
    expect(planRepair(pending, { inflight: inflight('claimed'), claimInLane: true }, ctx)).toEqual({ type: 'none' });
  });

  test('a done whose fact vanished (pending again on chain) is repaired back to a claim job', () => {
    const pending = fact({ status: 1, worker: ZERO, claimedAtS: 0 });
    for (const outcome of ['completed', 'failed', 'expired', 'lost', 'finished_elsewhere'] as const) {
      const a = planRepair(pending, { done: { activity_id: '5', outcome, finished_at_ms: 1 } }, ctx);
      expect(a).toMatchObject({ type: 'requeue', rule: 'R1c', deleteDone: true, deleteInflight: false });
    }
    // An expired pending activity stays done.
    const expired = { ...pending, isExpired: true };
    expect(planRepair(expired, { done: { activity_id: '5', outcome: 'expired', finished_at_ms: 1 } }, ctx)).toEqual({
      type: 'none',
    });
  });

  test('pending: a claim in flight is left alone; expired pending drops the claim job', () => {
    expect(planRepair(fact({ status: 1, worker: ZERO }), { inflight: inflight('claiming') }, ctx)).toEqual({
      type: 'none',
    });
    const claimJob = { activity_id: '5', queue_name: 'q', created_at_ms: 1, source: 'poll' as const };
    expect(planRepair(fact({ status: 1, worker: ZERO, isExpired: true }), { claimJob }, ctx).type).toBe('dropClaimJob');
  });
});
