/**
 * The finishing, re-drive, expiry and executor decisions as pure functions: plain records in, writes and effects
 * out; no store, no tracker, no fakes. The properties check idempotence: deciding the same event again on the
 * records a decision produced writes nothing more.
 */
import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { ActivityStatus } from '../chain/abi.ts';
import type { ActivityFact } from '../chain/facts.ts';
import type { Inflight, InflightState } from '../store/records.ts';
import type { SubmitResult } from '../txmgr/types.ts';
import { decideCompletionRejected } from './completions.ts';
import type { ChainEffect, Decision } from './effects.ts';
import { decideAssignRejected, decideLost, decideProgress, type Loss } from './executor-events.ts';
import { decideExpiry, type ExpiryFacts } from './expiry.ts';
import { decideResume, decideSend, decideSent, type SendFacts } from './finish.ts';
import { decideRedrive } from './recheck.ts';
import { applied, held, NOW_S, OTHER, recs, testOptions, WALLET } from './testing/fixtures.ts';

const NOW_MS = 1_700_000_000_000;
/** An executor crash that lost one task, the only one it held. */
const ALONE: Loss = { kind: 'crash', alone: true, anyRunning: false };
const STATES: InflightState[] = ['claiming', 'claimed', 'assigned', 'running', 'completing', 'failing', 'resuming'];
const kinds = (d: Decision) => d.effects.map((e) => e.kind);
const alive: SendFacts = { nowMs: NOW_MS, nowS: NOW_S + 10, hb: { pending: false } };
const completing = (id = '1') => ({ ...held(id, 'completing'), result_ref: 'ref', workflow_instance: '4' });

/** Decides `decide` on `r`, then again on what its writes left: the second decision's writes. */
function secondWrites(r: Inflight, decide: (r: Inflight | undefined) => Decision) {
  const id = r.activity_id;
  const after = applied(recs(r), decide(r));
  return decide(after.get(id)).writes;
}

function fact(over: Partial<ActivityFact> = {}): ActivityFact {
  return {
    activityId: '1',
    exists: true,
    queue: 'q',
    workflowInstance: '4',
    stepIndex: 0,
    activityType: 'echo',
    inputRef: '',
    status: ActivityStatus.Claimed,
    worker: WALLET,
    enqueuedAtS: NOW_S - 100,
    claimedAtS: NOW_S - 50,
    lastHeartbeatAtS: NOW_S,
    heartbeatTimeoutS: 600,
    expiresAtS: NOW_S + 3600,
    finishedAtS: 0,
    isCompleted: false,
    isExpired: false,
    nowS: NOW_S,
    blockNumber: 100,
    ...over,
  } as ActivityFact;
}

describe('finishing decisions', () => {
  const complete: ChainEffect = { kind: 'complete', id: '1', resultRef: 'ref' };

  test('a call is sent only for a record in the state it finishes', () => {
    expect(decideSend(complete, completing(), alive)).toEqual({ writes: [], effects: [], send: true });
    expect(decideSend(complete, held('1', 'failing'), alive).send).toBe(false);
    expect(decideSend(complete, undefined, alive)).toEqual({ writes: [], effects: [], send: false });
    const resume: ChainEffect = { kind: 'resume', id: '1', workflowInstance: '4', resultRef: 'ref' };
    expect(decideSend(resume, held('1', 'resuming'), alive).send).toBe(true);
    expect(decideSend(resume, completing(), alive).send).toBe(false);
  });

  test('a complete of an expired activity is not sent: the record ends expired', () => {
    const late = { ...alive, nowS: NOW_S + 3601 };
    const d = decideSend(complete, completing(), late);
    expect(d.send).toBe(false);
    expect(d.writes).toMatchObject([{ kind: 'end', done: { activity_id: '1', outcome: 'expired' } }]);
    expect(kinds(d)).toEqual(['ended', 'forget', 'forget']);
    // A heartbeat still pending keeps it alive past its heartbeat timeout (not past its lifetime).
    const quiet = { ...alive, nowS: NOW_S + 700 };
    expect(decideSend(complete, completing(), quiet).send).toBe(false);
    expect(decideSend(complete, completing(), { ...quiet, hb: { pending: true } }).send).toBe(true);
    expect(decideSend(complete, completing(), { ...quiet, hb: { pending: false, minedS: NOW_S + 200 } }).send).toBe(
      true,
    );
    // A resume is owed whatever the clock says: the complete landed.
    const resume: ChainEffect = { kind: 'resume', id: '1', workflowInstance: '4', resultRef: 'ref' };
    expect(decideSend(resume, held('1', 'resuming'), late).send).toBe(true);
  });

  test('a sent call is logged; a retryable submit failure only logged', () => {
    const ok: SubmitResult = { ok: true, nonce: 7, hash: '0xh' } as SubmitResult;
    expect(decideSent(complete, completing(), ok, NOW_MS)).toEqual({
      writes: [],
      effects: [
        {
          kind: 'log',
          level: 'info',
          message: 'complete sent',
          fields: { activity_id: '1', nonce: 7, tx_hash: '0xh' },
        },
      ],
    });
    const busy = { ok: false, stage: 'submit', error: { message: 'lane full' } } as unknown as SubmitResult;
    expect(kinds(decideSent(complete, completing(), busy, NOW_MS))).toEqual(['log']);
  });

  test('a call that would revert re-checks the id; a resume that would revert ends the record completed', () => {
    const revert = { ok: false, stage: 'simulate', error: { message: 'x' }, revert: { name: 'StepNotCompleted' } };
    const d = decideSent(complete, completing(), revert as unknown as SubmitResult, NOW_MS);
    expect(d.writes).toEqual([]);
    expect(d.effects.at(-1)).toEqual({ kind: 'recheck', ids: ['1'], why: 'complete simulation reverted' });
    const resume: ChainEffect = { kind: 'resume', id: '1', workflowInstance: '4', resultRef: 'ref' };
    const r = decideSent(resume, held('1', 'resuming'), revert as unknown as SubmitResult, NOW_MS);
    expect(r.writes).toMatchObject([
      { kind: 'end', done: { outcome: 'completed', resumed: true, result_ref: 'ref', finished_at_ms: NOW_MS } },
    ]);
    expect(r.effects).toContainEqual({
      kind: 'ended',
      id: '1',
      outcome: 'completed',
      reason: 'resume not needed: StepNotCompleted',
    });
  });

  test('the resume owed: the call for a workflow step, the end for a standalone activity', () => {
    const r = { ...held('1', 'resuming'), result_ref: 'ref', workflow_instance: '4' };
    expect(decideResume(r, NOW_MS)).toEqual({
      writes: [],
      effects: [{ kind: 'resume', id: '1', workflowInstance: '4', resultRef: 'ref' }],
    });
    for (const wf of ['0', undefined]) {
      const alone = { ...r, workflow_instance: wf } as Inflight;
      expect(decideResume(alone, NOW_MS).writes).toMatchObject([{ kind: 'end', done: { outcome: 'completed' } }]);
    }
  });

  test('property: a send decision applied, then decided again, writes nothing more', () => {
    const arb = fc.record({
      state: fc.constantFrom(...STATES),
      kind: fc.constantFrom('complete', 'fail', 'resume'),
      dt: fc.integer({ min: -10, max: 4000 }),
      pending: fc.boolean(),
    });
    fc.assert(
      fc.property(arb, ({ state, kind, dt, pending }) => {
        const call = { kind, id: '1', resultRef: 'ref', reason: 'x', workflowInstance: '4' } as ChainEffect;
        const f = { nowMs: NOW_MS, nowS: NOW_S + dt, hb: { pending } };
        expect(secondWrites(held('1', state), (r) => decideSend(call, r, f))).toEqual([]);
      }),
    );
  });
});

describe('re-drive decisions', () => {
  const x = { wallet: WALLET, nowMs: NOW_MS, inFlight: false };

  test('nothing for an id with a tx in flight, or without a record', () => {
    expect(decideRedrive(completing(), fact(), { ...x, inFlight: true })).toEqual({ writes: [], effects: [] });
    expect(decideRedrive(undefined, fact(), x)).toEqual({ writes: [], effects: [] });
  });

  test('a claim that did not land goes back to the claim queue while the activity is pending', () => {
    const r = held('1', 'claiming');
    const d = decideRedrive(r, fact({ status: ActivityStatus.Pending, worker: OTHER }), x);
    expect(d.writes).toEqual([
      { kind: 'requeue', job: { activity_id: '1', queue_name: 'q', created_at_ms: 1, source: 'reconcile' } },
    ]);
    expect(kinds(d)).toEqual(['log']);
    expect(decideRedrive(r, fact({ status: ActivityStatus.Pending, isExpired: true }), x).writes).toEqual([]);
  });

  test('a finishing record claimed by us on chain sends its call again; not ours or expired, nothing', () => {
    expect(decideRedrive(completing(), fact(), x).effects).toEqual([{ kind: 'complete', id: '1', resultRef: 'ref' }]);
    const failing = { ...held('1', 'failing'), fail_reason: 'boom' };
    expect(decideRedrive(failing, fact(), x).effects).toEqual([{ kind: 'fail', id: '1', reason: 'boom' }]);
    expect(decideRedrive(completing(), fact({ worker: OTHER }), x).effects).toEqual([]);
    expect(decideRedrive(completing(), fact({ isExpired: true }), x).effects).toEqual([]);
  });

  test('a landed complete whose workflow still waits on it is resumed; a claimed record lacking details is read', () => {
    const r = { ...held('1', 'resuming'), result_ref: 'ref', workflow_instance: '4' };
    const done = fact({ status: ActivityStatus.Completed, workflowResumedPastStep: false });
    expect(decideRedrive(r, done, x).effects).toEqual([
      { kind: 'resume', id: '1', workflowInstance: '4', resultRef: 'ref' },
    ]);
    expect(decideRedrive(r, { ...done, workflowResumedPastStep: true }, x).effects).toEqual([]);
    const bare = { ...held('1', 'claimed'), activity_type: '' };
    expect(decideRedrive(bare, fact(), x).effects).toEqual([{ kind: 'fillDetails', ids: ['1'] }]);
    expect(decideRedrive(held('1', 'claimed'), fact(), x).effects).toEqual([]);
  });

  test('property: a re-drive applied, then decided again on the same fact, writes nothing more', () => {
    const arb = fc.record({
      state: fc.constantFrom(...STATES),
      status: fc.constantFrom(...Object.values(ActivityStatus)),
      ours: fc.boolean(),
      isExpired: fc.boolean(),
      past: fc.option(fc.boolean(), { nil: undefined }),
      wf: fc.constantFrom('0', '4'),
    });
    fc.assert(
      fc.property(arb, ({ state, status, ours, isExpired, past, wf }) => {
        const f = fact({
          status,
          worker: ours ? WALLET : OTHER,
          isExpired,
          ...(past !== undefined ? { workflowResumedPastStep: past } : {}),
        });
        const r = { ...held('1', state), workflow_instance: wf, result_ref: 'ref' };
        expect(secondWrites(r, (cur) => decideRedrive(cur, f, x))).toEqual([]);
      }),
    );
  });
});

describe('expiry decisions', () => {
  const f = (over: Partial<ExpiryFacts> = {}): ExpiryFacts => ({
    nowMs: NOW_MS,
    nowS: NOW_S + 3601,
    hb: { pending: false },
    inFlight: false,
    ...over,
  });

  test('an executing record past its lifetime ends expired and is cancelled at the executor', () => {
    const d = decideExpiry(held('1', 'running'), f());
    expect(d.writes).toMatchObject([{ kind: 'end', done: { activity_id: '1', outcome: 'expired' } }]);
    expect(d.effects).toEqual([
      { kind: 'cancel', id: '1', reason: 'expired' },
      {
        kind: 'ended',
        id: '1',
        outcome: 'expired',
        reason: 'heartbeat timeout or lifetime passed: dropped locally, nothing sent',
      },
      { kind: 'forget', id: '1', what: 'all' },
      { kind: 'forget', id: '1', what: 'dispatch' },
    ]);
    expect(kinds(decideExpiry(held('1', 'claimed'), f()))).not.toContain('cancel');
  });

  test('claiming and resuming records, and records with a tx in flight, wait for their tx', () => {
    for (const s of ['claiming', 'resuming'] as const) expect(decideExpiry(held('1', s), f()).writes).toEqual([]);
    expect(decideExpiry(held('1', 'completing'), f({ inFlight: true })).writes).toEqual([]);
    expect(decideExpiry(undefined, f()).writes).toEqual([]);
  });

  test('past the heartbeat timeout: a pending heartbeat or a newer mined one keeps the record', () => {
    const late = f({ nowS: NOW_S + 601 });
    expect(decideExpiry(held('1', 'running'), late).writes).toHaveLength(1);
    expect(decideExpiry(held('1', 'running'), { ...late, hb: { pending: true } }).writes).toEqual([]);
    expect(decideExpiry(held('1', 'running'), { ...late, hb: { pending: false, minedS: NOW_S + 100 } }).writes).toEqual(
      [],
    );
    expect(decideExpiry(held('1', 'running'), f({ nowS: NOW_S + 599 })).writes).toEqual([]);
  });

  test('property: an expiry applied, then decided again, writes nothing more', () => {
    const arb = fc.record({
      state: fc.constantFrom(...STATES),
      dt: fc.integer({ min: 0, max: 4000 }),
      pending: fc.boolean(),
      inFlight: fc.boolean(),
    });
    fc.assert(
      fc.property(arb, ({ state, dt, pending, inFlight }) => {
        const facts = f({ nowS: NOW_S + dt, hb: { pending }, inFlight });
        expect(secondWrites(held('1', state), (r) => decideExpiry(r, facts))).toEqual([]);
      }),
    );
  });
});

describe('executor decisions', () => {
  const opts = testOptions;

  test('a task a crash lost alone is re-dispatched (isolated) while dispatches remain, then failed', () => {
    const d = decideLost(held('1', 'running'), 'gone', ALONE, opts, NOW_MS);
    expect(d.writes).toEqual([
      {
        kind: 'put',
        record: { ...held('1', 'running'), state: 'claimed', updated_at_ms: NOW_MS, crash_losses: 1, isolate: true },
      },
    ]);
    expect(kinds(d)).toEqual(['log', 'defer']);
    const spent = { ...held('1', 'running'), dispatch_attempts: 3 };
    const f = decideLost(spent, 'gone', ALONE, opts, NOW_MS);
    expect(f.writes).toMatchObject([{ kind: 'put', record: { state: 'failing', fail_reason: 'EXECUTOR_LOST: gone' } }]);
    expect(f.effects.at(-1)).toEqual({ kind: 'fail', id: '1', reason: 'EXECUTOR_LOST: gone' });
  });

  test('a run lost across a restart does not count; with re-offers off a lost task fails', () => {
    const spent = { ...held('1', 'assigned'), dispatch_attempts: 3 };
    expect(decideLost(spent, 'restart', { kind: 'restart' }, opts, NOW_MS).writes).toMatchObject([
      { kind: 'put', record: { state: 'claimed', refused_dispatches: 1 } },
    ]);
    const off = { ...opts, reofferLostTasks: false };
    expect(decideLost(held('1', 'running'), 'gone', ALONE, off, NOW_MS).writes).toMatchObject([
      { kind: 'put', record: { state: 'failing' } },
    ]);
    expect(decideLost(held('1', 'completing'), 'gone', ALONE, opts, NOW_MS)).toEqual({ writes: [], effects: [] });
  });

  test('a loss is charged to the right task: a graceful shutdown charges nothing; a crash, only a task held alone', () => {
    const spent = (state: 'assigned' | 'running', extra: Partial<Inflight> = {}) => ({
      ...held('1', state),
      dispatch_attempts: 3,
      ...extra,
    });
    const put = (d: Decision) => (d.writes[0]?.kind === 'put' ? d.writes[0].record : undefined);
    // Graceful: not counted, not isolated, even with every dispatch used.
    expect(put(decideLost(spent('running'), 'shut down', { kind: 'graceful' }, opts, NOW_MS))).toMatchObject({
      state: 'claimed',
      refused_dispatches: 1,
    });
    expect(put(decideLost(spent('running'), 'shut down', { kind: 'graceful' }, opts, NOW_MS))?.isolate).toBeUndefined();
    // A crash with others: never counted (so never failed by it); running ones are isolated, queued ones are not.
    const together: Loss = { kind: 'crash', alone: false, anyRunning: true };
    expect(put(decideLost(spent('running'), 'crash', together, opts, NOW_MS))).toMatchObject({
      state: 'claimed',
      refused_dispatches: 1,
      crash_losses: 1,
      isolate: true,
    });
    const queued = put(decideLost(spent('assigned'), 'crash', together, opts, NOW_MS));
    expect(queued).toMatchObject({ state: 'claimed', refused_dispatches: 1, crash_losses: 1 });
    expect(queued?.isolate).toBeUndefined();
    // Nobody known running: every task lost is a suspect. Lost in a crash before: a suspect too.
    const blind: Loss = { kind: 'crash', alone: false, anyRunning: false };
    expect(put(decideLost(spent('assigned'), 'crash', blind, opts, NOW_MS))?.isolate).toBe(true);
    expect(put(decideLost(spent('assigned', { crash_losses: 1 }), 'crash', together, opts, NOW_MS))?.isolate).toBe(
      true,
    );
    // Alone: counted, and failed once dispatches are used up.
    expect(put(decideLost(spent('assigned'), 'crash', ALONE, opts, NOW_MS))).toMatchObject({ state: 'failing' });
    expect(put(decideLost({ ...spent('assigned'), dispatch_attempts: 2 }, 'c', ALONE, opts, NOW_MS))).toMatchObject({
      state: 'claimed',
      isolate: true,
    });
  });

  test('Progress makes an assigned task running, and nothing else', () => {
    expect(decideProgress(held('1', 'assigned'), NOW_MS).writes).toEqual([
      { kind: 'put', record: { ...held('1', 'assigned'), state: 'running', updated_at_ms: NOW_MS } },
    ]);
    for (const s of STATES.filter((s) => s !== 'assigned'))
      expect(decideProgress(held('1', s), NOW_MS)).toEqual({ writes: [], effects: [] });
  });

  test('a refused assignment: retryable back to claimed (a re-offer not counted again), expired ends, else fails', () => {
    const r = held('1', 'assigned');
    const f0 = { opts, nowMs: NOW_MS, reoffered: false };
    const retry = { reason: 'no_credits', retryable: true, detail: '' } as const;
    const d = decideAssignRejected('1', r, retry, { opts, nowMs: NOW_MS, reoffered: false });
    expect(d.writes).toMatchObject([{ kind: 'put', record: { state: 'claimed', refused_dispatches: 1 } }]);
    expect(d.effects).toEqual([{ kind: 'defer', id: '1', delayMs: 1_000 }]);
    const again = decideAssignRejected('1', r, retry, { opts, nowMs: NOW_MS, reoffered: true });
    expect(again.writes).toMatchObject([{ kind: 'put', record: { state: 'claimed' } }]);
    expect((again.writes[0] as { record: Inflight }).record.refused_dispatches).toBeUndefined();
    const expired = decideAssignRejected(
      '1',
      r,
      { reason: 'expired', retryable: false },
      {
        opts,
        nowMs: NOW_MS,
        reoffered: false,
      },
    );
    expect(expired.writes).toMatchObject([{ kind: 'end', done: { outcome: 'expired' } }]);
    expect(expired.effects[0]).toEqual({ kind: 'cancel', id: '1', reason: 'expired' });
    // A late refusal neither overwrites a done record nor drops a record that moved on.
    for (const late of [undefined, held('1', 'resuming')])
      expect(decideAssignRejected('1', late, { reason: 'expired', retryable: false }, f0)).toEqual({
        writes: [],
        effects: [],
      });
    const bad = decideAssignRejected(
      '1',
      r,
      { reason: 'unsupported_type', retryable: false, detail: 'x' },
      {
        opts,
        nowMs: NOW_MS,
        reoffered: false,
      },
    );
    expect(bad.writes).toMatchObject([
      { kind: 'put', record: { state: 'failing', fail_reason: 'EXECUTOR_REFUSED: unsupported_type (x)' } },
    ]);
    expect(bad.effects).toEqual([{ kind: 'fail', id: '1', reason: 'EXECUTOR_REFUSED: unsupported_type (x)' }]);
  });

  test('a Completion the bridge refused re-dispatches or fails the run it reports; any other record does not wait', () => {
    const ev = { activity_id: '1', attempt: 1, code: 'OUTPUT_INVALID', reason: 'bad ref' };
    const d = decideCompletionRejected(held('1', 'running'), ev, { opts, nowMs: NOW_MS });
    expect(d.writes).toMatchObject([{ kind: 'put', record: { state: 'claimed', dispatch_attempts: 1 } }]);
    expect(kinds(d)).toEqual(['log', 'defer']);
    const spent = { ...held('1', 'running'), dispatch_attempts: 3 };
    const f = decideCompletionRejected(spent, { ...ev, attempt: 3 }, { opts, nowMs: NOW_MS });
    expect(f.effects.at(-1)).toEqual({ kind: 'fail', id: '1', reason: 'OUTPUT_INVALID: bad ref' });
    // Another attempt's refusal, or a record the executor does not hold: only logged.
    for (const r of [spent, held('1', 'claimed'), held('1', 'completing'), undefined])
      expect(decideCompletionRejected(r, ev, { opts, nowMs: NOW_MS }).writes).toEqual([]);
  });

  test('property: each executor decision applied, then decided again, writes nothing more', () => {
    const arb = fc.record({
      state: fc.constantFrom(...STATES),
      attempts: fc.integer({ min: 0, max: 4 }),
      event: fc.constantFrom('lost', 'lostRestart', 'progress', 'retry', 'expired', 'refused', 'completionRejected'),
      reoffered: fc.boolean(),
    });
    fc.assert(
      fc.property(arb, ({ state, attempts, event, reoffered }) => {
        const r = { ...held('1', state), dispatch_attempts: attempts };
        const decide = (cur: Inflight | undefined): Decision => {
          const f = { opts, nowMs: NOW_MS, reoffered };
          switch (event) {
            case 'lost':
              return decideLost(cur, 'gone', ALONE, opts, NOW_MS);
            case 'lostRestart':
              return decideLost(cur, 'restart', { kind: 'restart' }, opts, NOW_MS);
            case 'progress':
              return decideProgress(cur, NOW_MS);
            case 'retry':
              return decideAssignRejected('1', cur, { reason: 'no_credits', retryable: true }, f);
            case 'completionRejected':
              return decideCompletionRejected(
                cur,
                { activity_id: '1', attempt: attempts, code: 'X', reason: 'y' },
                { opts, nowMs: NOW_MS },
              );
            case 'expired':
              return decideAssignRejected('1', cur, { reason: 'expired', retryable: false }, f);
            default:
              return decideAssignRejected('1', cur, { reason: 'unsupported_type', retryable: false }, f);
          }
        };
        expect(secondWrites(r, decide)).toEqual([]);
      }),
    );
  });
});
