/**
 * The activity manager: drives every activity we hold through the lifecycle of `transitions.ts`, in the
 * supervisor thread (it owns the store and submits through the one nonce lane). The store is the source of
 * truth: every step re-reads the records it acts on inside its own transaction and checks the state it expects,
 * so events arriving in any order (tx receipts, executor messages, reconciler facts) cannot corrupt anything.
 *
 * One loop (`tick`, every 250 ms or when woken) runs, in order: chain clock refresh, local expiry, heartbeats,
 * executor dispatch, claims, and (every 15 s) a re-check against the chain of records whose transaction is no
 * longer in flight. Transaction outcomes arrive as `TxEvent`s; executor outcomes as bridge messages.
 */
import type { WcpConfig } from '../config/load.ts';
import type { TaskSpec, WorkerToSupervisor } from '../executor/messages.ts';
import { errorText } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import type { Metrics } from '../internal/metrics.ts';
import { getHeader, readActivities, readFacts } from '../chain/reads.ts';
import type { ActivityFact } from '../chain/facts.ts';
import { reconcileFacts } from './repair.ts';
import type { RpcTransport } from '../chain/transport.ts';
import { claimJobKey, doneKey, inflightKey, PREFIX } from '../store/keys.ts';
import { ClaimJobSchema, type Done, type DoneOutcome, type Inflight, InflightSchema, type InflightState, LaneTxSchema } from '../store/records.ts';
import type { Store, StoreTx } from '../store/store.ts';
import type { SubmitResult, TxEvent, TxRequest, SimResult } from '../txmgr/types.ts';
import { activityEvents, type Call, claimCall, claimSimulationCall, completeCall, failCall, heartbeatCall, MAX_REF_CHARS, resultRefOf, resumeCall } from './calls.ts';
import { canTransition, EXECUTING_STATES, HEARTBEAT_STATES, TRANSITIONS } from './transitions.ts';

/** What the manager needs of the transaction manager. */
export interface TxSender {
  submit(req: TxRequest): Promise<SubmitResult>;
  simulate(req: TxRequest): Promise<SimResult>;
  inFlight(): number;
}

/** What the manager needs of the executor side (the gRPC bridge in a worker thread, or the test no-op). */
export interface ExecutorLink {
  assign(task: TaskSpec): void;
  cancel(activityId: string, reason: string): void;
  drain(): void;
}

export interface ActivityManagerDeps {
  config: WcpConfig;
  store: Store;
  txm: TxSender;
  /** Chain reads, pinned to one block each (the reconciler's readers). */
  rpc: RpcTransport;
  executor: ExecutorLink;
  logger: Logger;
  metrics: Metrics;
  now?: () => number;
}

export type ManagerState = 'idle' | 'recovering' | 'running' | 'draining' | 'stopped';

export interface ActivityManager {
  /** Loads in-flight lane slots, resets executor assignments from a previous run, re-checks open records. */
  start(): Promise<void>;
  /** Claims are held until the reconciler's startup scan has run. */
  setClaimsEnabled(enabled: boolean): void;
  onTxEvent(ev: TxEvent): void;
  onExecutorEvent(ev: WorkerToSupervisor): void;
  /** Reconciler facts: repaired with `planRepair`, then open records are re-driven. */
  onFacts(facts: ActivityFact[]): Promise<void>;
  /** New claim jobs were recorded. */
  kick(): void;
  /** Stop claiming and dispatching; wait (≤ timeout) for executing/finishing activities. Returns the unfinished ids. */
  drain(timeoutMs: number): Promise<string[]>;
  stop(): Promise<void>;
  status(): { state: ManagerState; held: Record<string, number>; pending_txs: number; credits: number; chain_now_s: number };
}

const TICK_MS = 250;
const RECHECK_MS = 15_000;
const CLAIM_RESERVED_SLOTS = 2;
const FINISHING: ReadonlySet<InflightState> = new Set(['completing', 'failing', 'resuming']);
const OPEN_TX_STATES = new Set(['reserved', 'sent', 'mined']);

export function createActivityManager(deps: ActivityManagerDeps): ActivityManager {
  const { config, store, txm, rpc, executor, metrics } = deps;
  const addrs = { taskQueue: config.ethereum.taskQueue, workflowEngine: config.ethereum.workflowEngine, multicall3: config.ethereum.multicall3 };
  const log = deps.logger;
  const now = deps.now ?? Date.now;
  const wallet = config.ethereum.walletAddress.toLowerCase();
  const taskQueue = config.ethereum.taskQueue;
  const workflowEngine = config.ethereum.workflowEngine;
  const sched = config.scheduler;

  let state: ManagerState = 'idle';
  let claimsEnabled = false;
  let credits = 0;
  /** Activity id → the claim/complete/fail/resume tx in flight for it. */
  const pending = new Map<string, { kind: string; nonce: number }>();
  /** Activity id → heartbeat tx in flight. */
  const hbPending = new Map<string, number>();
  /** Activity id → earliest wall time for the next dispatch attempt (after a retryable refusal). */
  const dispatchAfter = new Map<string, number>();
  let chainNowS = 0;
  let chainSkewS = 0;
  let lastBlockSeen = -1;
  let lastClockMs = 0;
  let lastRecheckMs = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let ticking = false;
  let rerun = false;
  let claimPauseUntil = 0;
  const drainWaiters: Array<() => void> = [];

  // ------------------------------------------------------------------------------------------ helpers

  const listHeld = () => store.list(PREFIX.inflight, InflightSchema).map((e) => e.value);

  function chainNow(): number {
    return Math.max(chainNowS, now() / 1000 + chainSkewS);
  }

  function isExpired(r: Inflight, t = chainNow()): boolean {
    if (r.expires_at_s !== undefined && t > r.expires_at_s) return true;
    if (hbPending.has(r.activity_id)) return false;
    if (r.last_heartbeat_s !== undefined && r.heartbeat_timeout_s !== undefined && t > r.last_heartbeat_s + r.heartbeat_timeout_s) return true;
    return false;
  }

  function heartbeatIntervalS(r: Inflight): number {
    const byTimeout = r.heartbeat_timeout_s ? r.heartbeat_timeout_s / 3 : Number.POSITIVE_INFINITY;
    return Math.min(sched.heartbeatIntervalMs / 1000, byTimeout);
  }

  /** One guarded state change: applies only if the record is still in `from` (any of them). */
  async function transition(
    id: string,
    from: InflightState[],
    to: InflightState,
    patch: Partial<Inflight> | ((r: Inflight) => Partial<Inflight>) = {},
  ): Promise<Inflight | null> {
    return (await transitionMany([id], from, to, patch))[0] ?? null;
  }

  /** The same guarded change for many records in one store transaction; returns the records it changed. */
  async function transitionMany(
    ids: readonly string[],
    from: InflightState[],
    to: InflightState,
    patch: Partial<Inflight> | ((r: Inflight) => Partial<Inflight>) = {},
  ): Promise<Inflight[]> {
    if (ids.length === 0) return [];
    return await store.transact((tx) => {
      const changed: Inflight[] = [];
      for (const id of ids) {
        const r = tx.get(inflightKey(id), InflightSchema);
        if (!r || !from.includes(r.state) || !canTransition(r.state, to)) continue;
        const next: Inflight = { ...r, ...(typeof patch === 'function' ? patch(r) : patch), state: to, updated_at_ms: now() };
        tx.put(inflightKey(id), next);
        changed.push(next);
      }
      return changed;
    });
  }

  function finishIn(tx: StoreTx, id: string, outcome: DoneOutcome, extra: Partial<Done> = {}): Inflight | undefined {
    const r = tx.get(inflightKey(id), InflightSchema);
    const done: Done = {
      activity_id: id,
      outcome,
      finished_at_ms: now(),
      ...(r?.queue_name ? { queue_name: r.queue_name } : {}),
      ...(r?.workflow_instance ? { workflow_instance: r.workflow_instance } : {}),
      ...(r?.activity_type ? { activity_type: r.activity_type } : {}),
      ...extra,
    };
    tx.put(doneKey(id), done);
    tx.del(inflightKey(id));
    tx.del(claimJobKey(id));
    return r;
  }

  async function finish(id: string, outcome: DoneOutcome, extra: Partial<Done> = {}, reason = ''): Promise<void> {
    const r = await store.transact((tx) => finishIn(tx, id, outcome, extra));
    metrics.activities.inc({ outcome });
    log.info(`activity ${outcome}`, { activity_id: id, ...(reason ? { reason } : {}) });
    if (r && EXECUTING_STATES.has(r.state)) executor.cancel(id, outcome);
    pending.delete(id);
    hbPending.delete(id);
    dispatchAfter.delete(id);
  }

  /** Nonce placeholder of a tx being submitted (waiting for its turn in the lane). */
  const SUBMITTING = -1;

  async function send(call: Call, simulate: boolean): Promise<SubmitResult> {
    const heartbeat = call.kind === 'heartbeat';
    // Marked in flight BEFORE the submit: while it waits for its turn in the lane (simulation, estimate, a full
    // lane) a re-check or another path must not see the step as "no tx in flight" and send it a second time.
    const prevHb = new Map(call.activityIds.map((id) => [id, hbPending.get(id)]));
    const prev = new Map(call.activityIds.map((id) => [id, pending.get(id)]));
    const mark = (nonce: number) => {
      for (const id of call.activityIds) {
        if (heartbeat) hbPending.set(id, nonce);
        else pending.set(id, { kind: call.kind, nonce });
      }
    };
    const unmark = () => {
      for (const id of call.activityIds) {
        if (heartbeat) {
          if (hbPending.get(id) !== SUBMITTING) continue;
          const p = prevHb.get(id);
          if (p === undefined) hbPending.delete(id);
          else hbPending.set(id, p);
        } else {
          if (pending.get(id)?.nonce !== SUBMITTING) continue;
          const p = prev.get(id);
          if (p === undefined) pending.delete(id);
          else pending.set(id, p);
        }
      }
    };
    mark(SUBMITTING);
    let res: SubmitResult;
    try {
      res = await txm.submit({ kind: call.kind, activityIds: call.activityIds, to: call.to, data: call.data, simulate, ...(call.minGasLimit !== undefined ? { minGasLimit: call.minGasLimit } : {}) });
    } catch (e) {
      unmark();
      throw e;
    }
    if (res.ok) {
      metrics.txSent.inc({ kind: call.kind, outcome: 'submitted' });
      mark(res.nonce);
    } else {
      unmark();
      metrics.txSent.inc({ kind: call.kind, outcome: `rejected_${res.stage}` });
    }
    return res;
  }

  // ------------------------------------------------------------------------------------------ the tick

  function wake(delay = 0) {
    if (state === 'stopped' || state === 'idle') return;
    if (ticking) {
      rerun = true;
      return;
    }
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void tick(), delay);
  }

  async function tick(): Promise<void> {
    timer = null;
    ticking = true;
    rerun = false;
    const steps: Array<[string, () => Promise<void>]> = [
      ['clock', refreshClock],
      ['expiry', expireRound],
      ['heartbeat', heartbeatRound],
      ['dispatch', dispatchRound],
      ['claim', claimRound],
      ['recheck', recheckRound],
    ];
    for (const [name, step] of steps) {
      if (state === 'stopped') break;
      try {
        await step();
      } catch (e) {
        log.warn('lifecycle step failed', { step: name, error: errorText(e) });
      }
    }
    const counts: Record<string, number> = {};
    for (const r of listHeld()) counts[r.state] = (counts[r.state] ?? 0) + 1;
    for (const st of Object.keys(TRANSITIONS)) metrics.inflight.set({ state: st }, counts[st] ?? 0);
    ticking = false;
    for (const w of drainWaiters.splice(0)) w();
    if (state !== 'stopped') wake(rerun ? 0 : TICK_MS);
  }

  async function refreshClock(): Promise<void> {
    if (now() - lastClockMs < 1000) return;
    const b = await getHeader(rpc, 'latest');
    lastClockMs = now();
    if (b.number !== lastBlockSeen) {
      lastBlockSeen = b.number;
      chainSkewS = b.timestamp - now() / 1000;
    }
    chainNowS = b.timestamp;
  }

  async function expireRound(): Promise<void> {
    if (chainNowS === 0) return;
    const t = chainNow();
    for (const r of listHeld()) {
      if (r.state === 'claiming' || r.state === 'resuming') continue; // decided by their tx / the chain
      if (isExpired(r, t)) {
        await finish(r.activity_id, 'expired', {}, 'heartbeat timeout or lifetime passed: dropped locally, nothing sent');
      }
    }
  }

  async function heartbeatRound(): Promise<void> {
    if (chainNowS === 0) return;
    const t = chainNow();
    const due: string[] = [];
    /** Activity id → when its heartbeat came due (chain seconds): for the lateness histogram. */
    const dueAt = new Map<string, number>();
    for (const r of listHeld()) {
      if (!HEARTBEAT_STATES.has(r.state) || hbPending.has(r.activity_id)) continue;
      if (r.last_heartbeat_s === undefined || isExpired(r, t)) continue;
      if (t - r.last_heartbeat_s >= heartbeatIntervalS(r)) {
        due.push(r.activity_id);
        dueAt.set(r.activity_id, r.last_heartbeat_s + heartbeatIntervalS(r));
      }
    }
    if (due.length === 0) return;
    for (let i = 0; i < due.length; i += 200) {
      const ids = due.slice(i, i + 200);
      const res = await send(heartbeatCall(taskQueue, ids), false);
      if (!res.ok) log.warn('heartbeat not sent', { activity_ids: ids.join(','), error: res.error.message });
      else {
        const sentS = chainNow();
        for (const id of ids) metrics.heartbeatLateness.observe(Math.max(0, sentS - (dueAt.get(id) ?? sentS)));
        log.debug('heartbeat sent', { count: ids.length, nonce: res.nonce });
      }
    }
  }

  async function dispatchRound(): Promise<void> {
    if (credits <= 0 || state !== 'running') return;
    const t = now();
    const ready: string[] = [];
    for (const r of listHeld()) {
      if (ready.length >= credits) break;
      if (r.state !== 'claimed' || pending.has(r.activity_id)) continue;
      if ((dispatchAfter.get(r.activity_id) ?? 0) > t) continue;
      if (isExpired(r)) continue;
      if (!r.activity_type || r.expires_at_s === undefined) continue; // details not read yet
      ready.push(r.activity_id);
    }
    // One store transaction for the round (a restart re-offers everything it holds at once).
    const assigned = await transitionMany(ready, ['claimed'], 'assigned', (r) => ({ dispatch_attempts: (r.dispatch_attempts ?? 0) + 1 }));
    for (const next of assigned) {
      credits--;
      executor.assign({
        activity_id: next.activity_id,
        activity_type: next.activity_type ?? '',
        input_ref: next.input_ref ?? '',
        queue_name: next.queue_name,
        ...(next.workflow_instance && next.workflow_instance !== '0' ? { workflow_instance: next.workflow_instance } : {}),
        deadline_unix_ms: Math.floor(((next.expires_at_s ?? 0) - chainSkewS) * 1000),
        attempt: next.dispatch_attempts ?? 1,
      });
      log.info('activity assigned to executor', { activity_id: next.activity_id, attempt: next.dispatch_attempts });
    }
  }

  async function claimRound(): Promise<void> {
    if (state !== 'running' || !claimsEnabled || sched.mode !== 'claim' || now() < claimPauseUntil) return;
    const room = sched.maxInflight - store.count(PREFIX.inflight);
    if (room <= 0) return;
    if (txm.inFlight() >= config.txPolicy.maxInFlight - CLAIM_RESERVED_SLOTS) return;
    const want = Math.min(room, sched.claimBatch);
    const jobs = store.list(PREFIX.claimJob, ClaimJobSchema, { limit: want * 2 }).map((e) => e.value);
    if (jobs.length === 0) return;
    // Simulate each claim first: a lost race costs an eth_call, not gas.
    const sims = await Promise.all(
      jobs.map(async (j) => ({ job: j, sim: await txm.simulate({ ...claimSimulationCall(taskQueue, j.activity_id), simulate: true }) })),
    );
    const winners: string[] = [];
    const refused: string[] = [];
    for (const { job, sim } of sims) {
      const id = job.activity_id;
      if (sim.ok) {
        if (winners.length < want) winners.push(id);
        continue;
      }
      const name = sim.revert?.name ?? '';
      if (name === 'NotActiveWorker') {
        claimPauseUntil = now() + 30_000;
        log.error('claims refused: this wallet is no longer an active worker; pausing claims for 30 s', { wallet });
        return;
      }
      if (name === 'NotClaimable' || name === 'UnknownActivity' || name === 'ActivityExpired') {
        refused.push(id);
        log.info('claim refused by simulation (no gas spent); reading the activity', { activity_id: id, reason: sim.revert?.message ?? name });
      } else {
        log.warn('claim simulation failed', { activity_id: id, error: sim.error.message });
      }
    }
    // Why it is not claimable is the chain's to say, not the revert's: someone else won (lost), it expired, or
    // our own claim landed while this claim job was stale (then the activity is ours: rebuilt, not lost).
    if (refused.length) await recheck(refused, 'claim simulation refused').catch((e: unknown) => log.warn('re-check after a refused claim failed; will retry', { error: errorText(e) }));
    if (winners.length === 0) return;
    const taken = await store.transact((tx) => {
      const ok: string[] = [];
      const at = now();
      for (const id of winners) {
        const job = tx.get(claimJobKey(id), ClaimJobSchema);
        if (!job || tx.has(inflightKey(id)) || tx.has(doneKey(id))) continue;
        tx.del(claimJobKey(id));
        tx.put(inflightKey(id), { activity_id: id, state: 'claiming', queue_name: job.queue_name, dispatch_attempts: 0, created_at_ms: at, updated_at_ms: at } satisfies Inflight);
        ok.push(id);
      }
      return ok;
    });
    if (taken.length === 0) return;
    const res = await send(claimCall(taskQueue, taken), false);
    if (!res.ok) {
      log.warn('claim not sent; back to the claim queue', { activity_ids: taken.join(','), error: res.error.message, stage: res.stage });
      await store.transact((tx) => {
        for (const id of taken) {
          const r = tx.get(inflightKey(id), InflightSchema);
          if (r?.state !== 'claiming') continue;
          tx.del(inflightKey(id));
          tx.put(claimJobKey(id), { activity_id: id, queue_name: r.queue_name, created_at_ms: r.created_at_ms, source: 'poll' });
        }
      });
      return;
    }
    log.info('claim sent', { activity_ids: taken.join(','), nonce: res.nonce, tx_hash: res.hash });
  }

  // ------------------------------------------------------------------------------------------ chain re-check

  /** Chain truth for `ids`, all read at the latest block (the reconciler's fact shape). */
  /** Chain truth for `ids`: planRepair first, then re-drive open records whose transaction is gone. */
  async function recheck(ids: string[], why: string): Promise<void> {
    const open = ids.filter((id) => !pending.has(id));
    if (open.length === 0) return;
    const facts = await readFacts(rpc, addrs, open);
    await applyFacts(facts, why);
  }

  async function applyFacts(facts: ActivityFact[], why: string): Promise<void> {
    // Executing records are snapshotted so a repair that ends one can cancel it at the executor.
    const before = new Map(facts.map((f) => [f.activityId, store.get(inflightKey(f.activityId), InflightSchema)]));
    const actions = await reconcileFacts(store, facts.filter((f) => !pending.has(f.activityId)), {
      wallet,
      nowMs: now(),
      queueName: sched.queueName,
    });
    for (const { activityId, action } of actions) {
      log.info('repaired from chain', { activity_id: activityId, action: action.type, rule: 'rule' in action ? action.rule : '', reason: 'reason' in action ? action.reason : '', why });
      if (action.type === 'markDone') {
        metrics.activities.inc({ outcome: action.done.outcome });
        const was = before.get(activityId);
        if (was && EXECUTING_STATES.has(was.state)) executor.cancel(activityId, action.done.outcome);
        hbPending.delete(activityId);
      }
    }
    for (const f of facts) await redrive(f);
  }

  /** An open record whose transaction is not in flight: do its step again (or give the job back). */
  async function redrive(f: ActivityFact): Promise<void> {
    const id = f.activityId;
    if (pending.has(id)) return;
    const r = store.get(inflightKey(id), InflightSchema);
    if (!r) return;
    const ours = f.worker === wallet;
    if (r.state === 'claiming' && f.status === 1 && !f.isExpired) {
      await store.transact((tx) => {
        const cur = tx.get(inflightKey(id), InflightSchema);
        if (cur?.state !== 'claiming') return;
        tx.del(inflightKey(id));
        tx.put(claimJobKey(id), { activity_id: id, queue_name: cur.queue_name, created_at_ms: cur.created_at_ms, source: 'reconcile' });
      });
      log.info('claim did not land; activity back in the claim queue', { activity_id: id });
    } else if ((r.state === 'completing' || r.state === 'failing') && f.status === 2 && ours && !f.isExpired) {
      await submitFinish(r);
    } else if (r.state === 'resuming' && f.status === 3 && ours && f.workflowResumedPastStep === false) {
      await submitResume(r);
    } else if (r.state === 'claimed' && (r.expires_at_s === undefined || !r.activity_type)) {
      await fillDetails([id]);
    }
  }

  async function recheckRound(): Promise<void> {
    if (now() - lastRecheckMs < RECHECK_MS) return;
    lastRecheckMs = now();
    const ids = listHeld()
      .filter((r) => !pending.has(r.activity_id) && (r.state === 'claiming' || FINISHING.has(r.state) || (r.state === 'claimed' && !r.activity_type)))
      .map((r) => r.activity_id);
    if (ids.length) await recheck(ids, 'periodic');
  }

  /** Copies type, input, expiry and heartbeat timing from the chain into freshly claimed records. */
  async function fillDetails(ids: string[]): Promise<void> {
    const head = await getHeader(rpc, 'latest');
    const views = await readActivities(rpc, addrs, ids, head.number);
    await store.transact((tx) => {
      for (const v of views) {
        const r = tx.get(inflightKey(v.activityId), InflightSchema);
        if (!r || v.worker !== wallet) continue;
        tx.put(inflightKey(v.activityId), {
          ...r,
          workflow_instance: v.workflowInstance,
          step_index: v.stepIndex,
          activity_type: v.activityType,
          input_ref: v.inputRef,
          expires_at_s: v.expiresAtS,
          heartbeat_timeout_s: v.heartbeatTimeoutS,
          last_heartbeat_s: Math.max(r.last_heartbeat_s ?? 0, v.lastHeartbeatAtS),
          updated_at_ms: now(),
        } satisfies Inflight);
      }
    });
  }

  // ------------------------------------------------------------------------------------------ finishing

  async function submitFinish(r: Inflight): Promise<void> {
    // Two paths may reach here for one record at once (the executor's completion and a re-drive from chain facts
    // read just before it): the second would send the complete/fail a second time, to be reverted on chain.
    // `send` marks the id before its first await, so whoever comes second sees the first one's tx in flight.
    if (pending.has(r.activity_id)) return;
    if (isExpired(r)) {
      await finish(r.activity_id, 'expired', {}, 'expired before its result could be written: nothing sent');
      return;
    }
    const call =
      r.state === 'completing'
        ? completeCall(taskQueue, r.activity_id, r.result_ref ?? '')
        : failCall(taskQueue, r.activity_id, r.fail_reason ?? 'failed');
    const res = await send(call, true);
    if (res.ok) log.info(`${call.kind} sent`, { activity_id: r.activity_id, nonce: res.nonce, tx_hash: res.hash });
    else if (res.stage === 'simulate' || res.stage === 'estimate') {
      log.warn(`${call.kind} would revert; checking the chain`, { activity_id: r.activity_id, reason: res.revert?.message ?? res.error.message });
      await recheck([r.activity_id], `${call.kind} simulation reverted`);
    } else log.warn(`${call.kind} not sent; will retry`, { activity_id: r.activity_id, error: res.error.message });
  }

  async function submitResume(r: Inflight): Promise<void> {
    if (pending.has(r.activity_id)) return; // a resume (or the complete before it) already in flight: see submitFinish
    if (!r.workflow_instance || r.workflow_instance === '0') {
      await finish(r.activity_id, 'completed', { result_ref: r.result_ref ?? '', resumed: true });
      return;
    }
    const res = await send(resumeCall(workflowEngine, r.activity_id, r.workflow_instance), true);
    if (res.ok) log.info('resume sent', { activity_id: r.activity_id, workflow_instance: r.workflow_instance, nonce: res.nonce });
    else if (res.stage === 'simulate' || res.stage === 'estimate') {
      // Someone resumed it already (StepNotCompleted for the next step / WorkflowFinished): nothing left to do.
      await finish(r.activity_id, 'completed', { result_ref: r.result_ref ?? '', resumed: true }, `resume not needed: ${res.revert?.name ?? res.error.message}`);
    } else log.warn('resume not sent; will retry', { activity_id: r.activity_id, error: res.error.message });
  }

  // ------------------------------------------------------------------------------------------ tx outcomes

  async function handleTx(ev: TxEvent): Promise<void> {
    if (ev.type !== 'confirmed' && ev.type !== 'failed') return;
    const ids = ev.activityIds;
    const clearHb = () => {
      for (const id of ids) if (hbPending.get(id) === ev.nonce) hbPending.delete(id);
    };
    // A tx's ids stay "in flight" until its outcome is committed to the store: a heartbeat round, a re-check or
    // a reconciler fact read before the tx landed would otherwise see the old record with nothing in flight and
    // act on it again (send the heartbeat twice, put a landed claim back in the claim queue, re-send a complete).
    const release = (which: readonly string[]) => {
      for (const id of which) if (pending.get(id)?.nonce === ev.nonce) pending.delete(id);
    };
    try {
      await settleTx(ev, ids, clearHb, release);
    } finally {
      if (ev.kind === 'heartbeat') clearHb();
      else release(ids);
    }
  }

  async function settleTx(ev: Extract<TxEvent, { type: 'confirmed' | 'failed' }>, ids: string[], clearHb: () => void, release: (ids: readonly string[]) => void): Promise<void> {
    metrics.txSent.inc({ kind: ev.kind, outcome: ev.type === 'failed' ? 'failed' : ev.status });
    if (ev.type === 'failed' || ev.status === 'reverted') {
      clearHb();
      release(ids);
    }
    if (ev.type === 'failed') {
      log.warn('transaction failed', { kind: ev.kind, nonce: ev.nonce, activity_ids: ids.join(','), error: ev.error.message });
      if (ids.length) await recheck(ids, `${ev.kind} tx failed`);
      return;
    }
    if (ev.status === 'reverted') {
      log.warn('transaction reverted', { kind: ev.kind, nonce: ev.nonce, activity_ids: ids.join(','), reason: ev.revert?.message ?? '' });
      if (ids.length) await recheck(ids, `${ev.kind} reverted`);
      return;
    }
    const events = activityEvents(ev.logs, taskQueue, wallet);
    switch (ev.kind) {
      case 'claim':
      case 'claim_batch': {
        const mine = ids.filter((id) => events.claimed.get(id) === wallet);
        const others = ids.filter((id) => !mine.includes(id));
        for (const id of mine) await transition(id, ['claiming'], 'claimed');
        if (mine.length) {
          await fillDetails(mine);
          log.info('claimed', { activity_ids: mine.join(','), tx_hash: ev.hash, block: ev.blockNumber });
        }
        release(ids);
        if (others.length) await recheck(others, 'not claimed by our claim tx');
        break;
      }
      case 'heartbeat': {
        // The heartbeat's own block time, not "now": after a stall (a frozen process, a slow RPC) the confirmation
        // may be handled long after the block, and "now" would make a lapsed activity look freshly heartbeated.
        const t = await getHeader(rpc, ev.blockNumber)
          .then((h) => h.timestamp)
          .catch((e: unknown) => {
            log.warn('heartbeat block unreadable; taking the chain clock as its time', { block: ev.blockNumber, error: errorText(e) });
            return Math.floor(chainNow());
          });
        const ok = ids.filter((id) => events.heartbeat.has(id));
        try {
          await store.transact((tx) => {
            for (const id of ok) {
              const r = tx.get(inflightKey(id), InflightSchema);
              if (r) tx.put(inflightKey(id), { ...r, last_heartbeat_s: Math.max(r.last_heartbeat_s ?? 0, Math.min(t, r.expires_at_s ?? t)), updated_at_ms: now() });
            }
          });
        } finally {
          clearHb();
        }
        const refused = ids.filter((id) => !events.heartbeat.has(id) && store.has(inflightKey(id)));
        if (refused.length) await recheck(refused, 'heartbeat not accepted');
        break;
      }
      case 'complete': {
        for (const id of ids) {
          if (!events.completed.has(id)) {
            release([id]);
            await recheck([id], 'complete tx emitted no ActivityCompleted');
            continue;
          }
          const r = await transition(id, ['completing'], 'resuming');
          release([id]);
          if (r) await submitResume(r);
        }
        break;
      }
      case 'fail':
        for (const id of ids) {
          if (events.failed.has(id)) {
            const r = store.get(inflightKey(id), InflightSchema);
            await finish(id, 'failed', { reason: r?.fail_reason ?? '' });
          } else {
            release([id]);
            await recheck([id], 'fail tx emitted no ActivityFailed');
          }
        }
        break;
      case 'resume':
        for (const id of ids) {
          const r = store.get(inflightKey(id), InflightSchema);
          if (r?.state === 'resuming') await finish(id, 'completed', { result_ref: r.result_ref ?? '', resumed: true });
        }
        break;
      default:
        break;
    }
  }

  // ------------------------------------------------------------------------------------------ executor

  async function onCompletion(id: string, attempt: number, result: Extract<WorkerToSupervisor, { type: 'completion' }>['result']): Promise<void> {
    const r = store.get(inflightKey(id), InflightSchema);
    if (!r || !EXECUTING_STATES.has(r.state)) {
      log.warn('completion for an activity not executing; ignored', { activity_id: id, state: r?.state ?? 'none' });
      return;
    }
    if (attempt !== (r.dispatch_attempts ?? 0)) {
      log.warn('completion of an earlier attempt; ignored', { activity_id: id, attempt, current: r.dispatch_attempts });
      return;
    }
    if (result.ok) {
      const ref = resultRefOf(result.output_refs);
      if (ref.length > MAX_REF_CHARS) {
        const next = await transition(id, [r.state], 'failing', { fail_reason: `OUTPUT_TOO_LARGE: result reference of ${ref.length} chars (max ${MAX_REF_CHARS})` });
        if (next) await submitFinish(next);
        return;
      }
      const next = await transition(id, [r.state], 'completing', { result_ref: ref });
      log.info('executor completed activity', { activity_id: id, result_ref: ref });
      if (next) await submitFinish(next);
      return;
    }
    const attempts = r.dispatch_attempts ?? 1;
    if (result.retryable && attempts < config.executor.maxDispatchAttempts) {
      log.warn('executor failed activity (retryable); re-offering', { activity_id: id, code: result.code, attempt: attempts });
      await transition(id, [r.state], 'claimed');
      dispatchAfter.set(id, now() + 1000 * attempts);
      return;
    }
    const reason = `${result.code}: ${result.message}`.slice(0, MAX_REF_CHARS);
    log.warn('executor failed activity', { activity_id: id, code: result.code, message: result.message });
    const next = await transition(id, [r.state], 'failing', { fail_reason: reason });
    if (next) await submitFinish(next);
  }

  async function handleExecutor(ev: WorkerToSupervisor): Promise<void> {
    switch (ev.type) {
      case 'credits':
        credits = Math.max(0, ev.available);
        if (credits > 0) wake();
        break;
      case 'state':
        log.info('executor link', { state: ev.state, ...(ev.executor_id ? { executor_id: ev.executor_id } : {}), ...(ev.detail ? { detail: ev.detail } : {}) });
        if (ev.state !== 'ready') credits = 0;
        break;
      case 'accepted':
        break;
      case 'progress':
        await transition(ev.activity_id, ['assigned'], 'running');
        break;
      case 'assignRejected': {
        if (ev.retryable) {
          // The bridge refuses before writing anything to the executor: that attempt number was never seen, so it is
          // given back (the executor's first sight of a task is attempt 1, and a completion names the attempt it ran).
          await transition(ev.activity_id, ['assigned'], 'claimed', (r) => ({ dispatch_attempts: Math.max(0, (r.dispatch_attempts ?? 1) - 1) }));
          dispatchAfter.set(ev.activity_id, now() + 1000);
        } else if (ev.reason === 'expired') {
          await finish(ev.activity_id, 'expired', {}, 'executor refused: deadline passed');
        } else if (ev.reason !== 'duplicate') {
          const next = await transition(ev.activity_id, ['assigned'], 'failing', { fail_reason: `EXECUTOR_REFUSED: ${ev.reason}${ev.detail ? ` (${ev.detail})` : ''}` });
          if (next) await submitFinish(next);
        }
        break;
      }
      case 'completion':
        await onCompletion(ev.activity_id, ev.attempt, ev.result);
        break;
      case 'resync':
        for (const id of ev.lost_activity_ids) {
          if (config.executor.reofferLostTasks) {
            const r = await transition(id, ['assigned', 'running'], 'claimed');
            if (r) log.info('executor lost the task; re-offering', { activity_id: id });
          } else {
            const next = await transition(id, ['assigned', 'running'], 'failing', { fail_reason: 'EXECUTOR_LOST: the executor restarted and lost the task' });
            if (next) await submitFinish(next);
          }
        }
        break;
      case 'rejected':
        metrics.executorRejected.inc();
        break;
      default:
        break;
    }
    wake();
  }

  // ------------------------------------------------------------------------------------------ api

  return {
    async start() {
      state = 'recovering';
      // Transactions still in flight from before a restart (the tx manager re-sends them).
      for (const { value: slot } of store.list(PREFIX.lane, LaneTxSchema)) {
        if (!OPEN_TX_STATES.has(slot.state)) continue;
        for (const id of slot.activity_ids) {
          if (slot.kind === 'heartbeat') hbPending.set(id, slot.nonce);
          else pending.set(id, { kind: slot.kind, nonce: slot.nonce });
        }
      }
      // A new executor link knows nothing of earlier assignments: offer them again.
      const held = listHeld();
      await transitionMany(
        held.filter((r) => EXECUTING_STATES.has(r.state)).map((r) => r.activity_id),
        [...EXECUTING_STATES],
        'claimed',
      );
      const open = held.filter((r) => !pending.has(r.activity_id)).map((r) => r.activity_id);
      if (open.length) {
        try {
          await recheck(open, 'startup');
        } catch (e) {
          log.warn('startup re-check failed; will retry', { error: errorText(e) });
        }
      }
      lastRecheckMs = now();
      log.info('activity manager started', { held: held.length, txs_in_flight: pending.size + hbPending.size });
      state = 'running';
      wake();
    },
    setClaimsEnabled(enabled) {
      claimsEnabled = enabled;
      if (enabled) wake();
    },
    onTxEvent(ev) {
      handleTx(ev)
        .catch((e: unknown) => log.error('handling a tx event failed', { kind: 'kind' in ev ? ev.kind : ev.type, error: errorText(e) }))
        .finally(() => wake());
    },
    onExecutorEvent(ev) {
      handleExecutor(ev).catch((e: unknown) => log.error('handling an executor message failed', { type: ev.type, error: errorText(e) }));
    },
    async onFacts(facts) {
      await applyFacts(facts, 'reconciler');
      wake();
    },
    kick() {
      wake();
    },
    async drain(timeoutMs) {
      if (state === 'running') state = 'draining';
      claimsEnabled = false;
      executor.drain();
      const deadline = now() + timeoutMs;
      const busy = () => listHeld().filter((r) => EXECUTING_STATES.has(r.state) || FINISHING.has(r.state) || r.state === 'claiming' || pending.has(r.activity_id));
      while (busy().length > 0 && now() < deadline) {
        await new Promise<void>((r) => {
          drainWaiters.push(r);
          setTimeout(r, 200);
        });
      }
      const unfinished = listHeld().map((r) => `${r.activity_id}:${r.state}`);
      return unfinished;
    },
    async stop() {
      state = 'stopped';
      if (timer) clearTimeout(timer);
      while (ticking) await new Promise((r) => setTimeout(r, 20));
    },
    status() {
      const held: Record<string, number> = {};
      for (const r of listHeld()) held[r.state] = (held[r.state] ?? 0) + 1;
      return { state, held, pending_txs: pending.size + hbPending.size, credits, chain_now_s: chainNow() };
    },
  };
}
