/**
 * The activity manager: drives every activity we hold through the lifecycle of `transitions.ts`, in the
 * supervisor thread (it owns the store and submits through the one nonce lane). The store is the source of
 * truth: every step re-reads the records it acts on inside its own transaction and checks the state it expects,
 * so events arriving in any order (tx receipts, executor messages, reconciler facts) cannot corrupt anything.
 *
 * This file only wires the steps (one file each) around the in-flight tracker (`tracker.ts`) and runs three
 * loops (`loop.ts`), each every `TICK_MS` or when woken, so no step waits on another's slow call. Events go to
 * their decider (a pure function, `effects.ts`) through one effects runner (`runner.ts`):
 *  - heartbeats (the chain clock, then due heartbeats): liveness first, never behind a claim, dispatch or repair;
 *  - claims (a claim's simulation and estimate may be slow on a slow node);
 *  - the main loop: the chain clock, local expiry, executor dispatch and the periodic chain re-check.
 * A fourth, slow one deletes `done:` records and `tx:` refs past their retention (`retention.ts`); nothing wakes it.
 * Events reach their handlers through one table per source (`txEventTable`, `executorEventTable`): an event no
 * decider wants is dropped at `route` and wakes nothing. Reconciler facts go to the re-check (`recheck.ts`).
 */
import type { ActivityFact } from '../chain/facts.ts';
import type { RpcTransport } from '../chain/transport.ts';
import type { ExecutorEvent } from '../executor/messages.ts';
import { getHeader } from '../chain/reads.ts';
import { errorText } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import type { Metrics } from '../internal/metrics.ts';
import { PREFIX } from '../store/keys.ts';
import { LaneTxSchema } from '../store/records.ts';
import type { Store } from '../store/store.ts';
import type { TxEvent } from '../txmgr/types.ts';
import { BATCH_CODEC, type Batcher, type BatchCodec, batchGasCap, createBatcher, expandBatchEvent } from './batcher.ts';
import { createClaimStep } from './claim.ts';
import { createChainClock } from './clock.ts';
import type { ExecutorLink, LifecycleContext, TxSender } from './context.ts';
import { createFillDetails } from './details.ts';
import { createDispatchStep } from './dispatch.ts';
import { createExecutorEvents, type ExecutorHandlers } from './executor-events.ts';
import { expireRound } from './expiry.ts';
import { heartbeatRound } from './heartbeat.ts';
import { createStepLoop } from './loop.ts';
import { DONE_PRUNE_FIRST_MS, DRAIN_POLL_MS, type LifecycleOptions, TICK_MS } from './options.ts';
import { createClaimGate } from './claim-gate.ts';
import { type ClaimPause, type ClaimPauses, createClaimPauses } from './pauses.ts';
import { type Completions, createCompletions } from './completions.ts';
import { createLinkView, storageRefused } from './link.ts';
import { listHeld, OPEN_LANE_STATES } from './records.ts';
import { createRecheckStep } from './recheck.ts';
import { pruneDone, pruneIntervalMs, pruneTxRefs } from './retention.ts';
import { createSend } from './send.ts';
import { createEffectsRunner } from './runner.ts';
import { wanted } from './settle.ts';
import { createSettleTx, type SettleTx } from './tx-events.ts';
import { createInFlightTracker } from './tracker.ts';
import { EXECUTING_STATES, FINISHING_STATES, TRANSITIONS } from './transitions.ts';

export type { ExecutorLink, TxSender } from './context.ts';

export interface ActivityManagerDeps {
  /** Compiled from the config by `lifecycleOptions`. */
  options: LifecycleOptions;
  store: Store;
  txm: TxSender;
  /** Chain reads (headers, activities, facts at the latest block). */
  rpc: RpcTransport;
  executor: ExecutorLink;
  logger: Logger;
  metrics: Metrics;
  now?: () => number;
  /** Why claims are paused: shared with the supervisor, which holds the reasons only it knows (default: a new set). */
  pauses?: ClaimPauses;
  /** Test seam: when the first deletion of done records past their retention runs (default `DONE_PRUNE_FIRST_MS`). */
  donePruneFirstMs?: number;
  /** Test seam: the batch codec when `options.batch` says batch (default: the pinned executor's, `BATCH_CODEC`). */
  batchCodec?: BatchCodec;
}

export type ManagerState = 'idle' | 'recovering' | 'running' | 'draining' | 'stopped';

/** The manager's legal state changes: start recovers then runs; drain and stop only go forward. */
const MANAGER_TRANSITIONS: Record<ManagerState, readonly ManagerState[]> = {
  idle: ['recovering', 'stopped'],
  recovering: ['running', 'stopped'],
  running: ['draining', 'stopped'],
  draining: ['stopped'],
  stopped: [],
};

export interface ActivityManager {
  /** Loads in-flight lane slots, resets executor assignments from a previous run, re-checks open records. */
  start(): Promise<void>;
  /** Claims are held until the reconciler's startup scan has run. */
  setClaimsEnabled(enabled: boolean): void;
  onTxEvent(ev: TxEvent): void;
  onExecutorEvent(ev: ExecutorEvent): void;
  /** Reconciler facts: repaired with `planRepair`, then open records are re-driven. */
  onFacts(facts: ActivityFact[]): Promise<void>;
  /** New claim jobs were recorded. */
  kick(): void;
  /** Stop claiming and dispatching; wait (≤ timeout) for executing/finishing activities. Returns the unfinished ids. */
  drain(timeoutMs: number): Promise<string[]>;
  stop(): Promise<void>;
  status(): {
    state: ManagerState;
    held: Record<string, number>;
    pending_txs: number;
    credits: number;
    chain_now_s: number;
    /** When the heartbeat loop last finished a round (now, while not running). */
    last_tick_ms: number;
    /** Every reason claims are paused now (`pauses.ts`); empty while claims run. */
    claims_paused: ClaimPause[];
    executor: {
      ready: boolean;
      types: string[];
      storage_available: boolean;
      /** Why the storage service refuses the worker (a refusal reason and the service's words), or null. */
      storage_refused: { reason: string; detail: string } | null;
    };
  };
}

/**
 * Each event type of a source and what takes it: `null` when no decider wants it; a handler returning `null`
 * declines the event (the settle decisions want only some `mined` and `reorged`).
 */
export type EventTable<E extends { type: string }> = {
  [T in E['type']]: ((ev: Extract<E, { type: T }>) => Promise<void> | null) | null;
};

/** The one filter: hands `ev` to its handler, or drops it (null) when none wants it. */
export function route<E extends { type: string }>(table: EventTable<E>, ev: E): Promise<void> | null {
  const take = table[ev.type as E['type']] as ((ev: E) => Promise<void> | null) | null;
  return take ? take(ev) : null;
}

/**
 * Transaction events: an activity tx's outcome to the settle decisions (`wanted` says which); the lane's news
 * (funds, a foreign tx) only wakes the loops (the supervisor acts on it).
 */
export function txEventTable(settle: SettleTx): EventTable<TxEvent> {
  const settled = (ev: TxEvent) => (wanted(ev) ? settle(ev) : null);
  const wakeOnly = async () => {};
  return {
    submitted: null,
    replaced: null,
    mined: settled,
    reorged: settled,
    confirmed: settled,
    failed: settled,
    insufficientFunds: wakeOnly,
    fundsRestored: wakeOnly,
    foreignTx: wakeOnly,
    laneResynced: wakeOnly,
  };
}

/** Executor messages: link, credits, storage, progress, refusals and Resyncs (`executor-events.ts`); Completions. */
export function executorEventTable(h: ExecutorHandlers, completions: Completions): EventTable<ExecutorEvent> {
  return {
    ...h,
    completion: completions.onCompletion,
    completionRejected: completions.onRejected,
    accepted: null,
    drained: null,
    stopped: null,
  };
}

/** A manager in state `idle`; `start` begins the loop. */
export function createActivityManager(deps: ActivityManagerDeps): ActivityManager {
  const now = deps.now ?? Date.now;
  /** The batch gas cap follows the block gas limit read at start (30M until then). */
  let gasCap = batchGasCap(30_000_000n);
  // With the wallet delegated to the batch executor (EIP-7702), the calls go through the call batcher.
  const batchCodec = deps.options.batch.mode === 'batch' ? (deps.batchCodec ?? BATCH_CODEC) : undefined;
  const batcher: Batcher | undefined = batchCodec
    ? createBatcher({
        txm: deps.txm,
        codec: batchCodec,
        wallet: deps.options.wallet,
        log: deps.logger.child('batcher'),
        now,
        gasCap: () => gasCap,
      })
    : undefined;
  /** A batch's events, one per call (a failed call of a mined batch is a reverted one of its own). */
  const expand = (ev: TxEvent): TxEvent[] =>
    batchCodec ? expandBatchEvent(ev, (logs) => batchCodec.failures(logs, deps.options.wallet)) : [ev];
  const ctx: LifecycleContext = {
    opts: deps.options,
    store: deps.store,
    txm: batcher ?? deps.txm,
    rpc: deps.rpc,
    executor: deps.executor,
    log: deps.logger,
    metrics: deps.metrics,
    now,
    clock: createChainClock({ rpc: deps.rpc, now }),
    tracker: createInFlightTracker(),
  };
  const { store, executor, log, metrics, tracker, clock } = ctx;

  const send = createSend(ctx);
  const fillDetails = createFillDetails(ctx);
  const link = createLinkView();
  const dispatch = createDispatchStep(ctx, { link });
  const recheck = createRecheckStep(ctx);
  const runner = createEffectsRunner(ctx, {
    send,
    fillDetails,
    recheck: recheck.recheck,
    defer: dispatch.defer,
    forgetDispatch: dispatch.forget,
  });
  /** For steps that are not deciders: a re-check as an effect. */
  const rechecked = (ids: string[], why: string) => runner.run([{ kind: 'recheck', ids, why }]);
  const pauses = deps.pauses ?? createClaimPauses({ log, metrics });
  const gate = createClaimGate(ctx, { link, credits: dispatch.credits, pauses });
  const claim = createClaimStep(ctx, { send, recheck: rechecked, gate });
  const settle = createSettleTx(ctx, runner);
  const completions = createCompletions(ctx, { runner, link, recheck: rechecked });
  const txEvents = txEventTable(settle);
  const executorEvents = executorEventTable(createExecutorEvents(ctx, { runner, dispatch, link }), completions);

  let state: ManagerState = 'idle';
  /** The one place `state` changes: a change the table does not allow (e.g. back to running after a stop) is refused. */
  function setState(next: ManagerState): void {
    if (next === state) return;
    if (!MANAGER_TRANSITIONS[state].includes(next)) {
      log.warn('activity manager state change refused', { from: state, to: next });
      return;
    }
    log.info(`activity manager ${next}`, { from: state });
    state = next;
  }
  let claimsEnabled = false;
  const drainWaiters: Array<() => void> = [];

  async function periodicRecheck(): Promise<void> {
    const due = recheck.periodic();
    if (!due) return;
    await runner.run(due);
    // Completions the executor reported that are not settled yet (finished, still only heartbeated).
    await completions.recheck();
  }

  async function mainRound(): Promise<void> {
    const steps: Array<[string, () => Promise<void>]> = [
      ['clock', () => clock.refresh()],
      ['expiry', () => expireRound(ctx, (id, decide) => runner.decide([id], (rs) => decide(rs.get(id))))],
      ['dispatch', () => dispatch.run(state === 'running')],
      ['recheck', periodicRecheck],
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
    for (const r of listHeld(store)) counts[r.state] = (counts[r.state] ?? 0) + 1;
    for (const st of Object.keys(TRANSITIONS)) metrics.inflight.set({ state: st }, counts[st] ?? 0);
    for (const w of drainWaiters.splice(0)) w();
  }

  /** When the heartbeat loop last finished a round (`/healthz`: the loops are turning). */
  let lastTickMs = now();

  /**
   * What was held at this start, not yet heartbeated by this process: heartbeated as soon as it can be (at once,
   * or once a heartbeat the previous process sent has landed), due or not. A restart then re-asserts every
   * activity on chain within seconds however its schedule fell (one heartbeat sent just before the kill, another
   * due in a second), at the price of one interval's heartbeats once per start.
   */
  const owed = new Set<string>();

  async function heartbeatLoopRound(): Promise<void> {
    // The clock read failing must not stop heartbeats: between reads the clock runs on the wall clock.
    await clock.refresh().catch((e: unknown) => log.debug('chain clock not refreshed', { error: errorText(e) }));
    await heartbeatRound(ctx, send, owed);
    lastTickMs = now();
  }

  /** The heartbeat loop first (`start` runs it before the others). */
  const loops = [
    createStepLoop('heartbeat', TICK_MS, heartbeatLoopRound, log),
    createStepLoop('claim', TICK_MS, () => claim.run(state === 'running' && claimsEnabled), log),
    createStepLoop('main', TICK_MS, mainRound, log),
  ];
  const retention = createStepLoop(
    'retention',
    pruneIntervalMs(ctx.opts.doneRetentionMs),
    async () => {
      const n = await pruneDone(store, now(), ctx.opts.doneRetentionMs);
      const refs = await pruneTxRefs(store, now(), ctx.opts.doneRetentionMs);
      if (n > 0 || refs > 0)
        log.info('done records and tx refs past their retention deleted', {
          count: n,
          tx_refs: refs,
          retention_ms: ctx.opts.doneRetentionMs,
        });
    },
    log,
  );

  function wake() {
    if (state === 'stopped' || state === 'idle') return;
    for (const l of loops) l.wake();
  }

  /** One transaction event (one call's, for a batch) to its decider. */
  function onOneTxEvent(ev: TxEvent): void {
    route(txEvents, ev)
      ?.catch((e: unknown) =>
        log.error('handling a tx event failed', { kind: 'kind' in ev ? ev.kind : ev.type, error: errorText(e) }),
      )
      // Acks owed to Completions whose record this event moved past completing/failing.
      .then(() => runner.run(completions.acksDue()))
      .catch((e: unknown) => log.error('acknowledging completions failed', { error: errorText(e) }))
      .finally(wake);
  }

  /** Lane slots still open from before a restart: their ids are in flight again (mined heartbeats pace from their block). */
  async function restoreLane(): Promise<void> {
    const times = new Map<number, number | null>();
    for (const { value: slot } of store.list(PREFIX.lane, LaneTxSchema)) {
      if (!OPEN_LANE_STATES.has(slot.state)) continue;
      const minedAt = slot.state === 'mined' ? slot.block_number : undefined;
      // A batch holds each of its calls' ids under the call's kind.
      const calls = slot.calls?.map((c) => ({ kind: c.kind, ids: c.activity_ids })) ?? [
        { kind: slot.kind, ids: slot.activity_ids },
      ];
      for (const { kind, ids } of calls) {
        tracker.restore(kind, ids, slot.nonce);
        if (kind !== 'heartbeat' || minedAt === undefined) continue;
        if (!times.has(minedAt))
          times.set(
            minedAt,
            await getHeader(deps.rpc, minedAt).then(
              (h) => h.timestamp,
              () => null,
            ),
          );
        const t = times.get(minedAt);
        if (t != null) tracker.heartbeats.mined(ids, slot.nonce, t);
      }
    }
  }

  return {
    async start() {
      setState('recovering');
      if (batcher) {
        const b = await deps.rpc
          .request<{ gasLimit?: string } | null>('eth_getBlockByNumber', ['latest', false])
          .catch(() => null);
        if (b?.gasLimit) gasCap = batchGasCap(BigInt(b.gasLimit));
        log.info('batching calls (EIP-7702)', { batch_gas_cap: gasCap.toString() });
      }
      // Transactions still in flight from before a restart (the tx manager re-sends them).
      await restoreLane();
      for (const r of listHeld(store)) owed.add(r.activity_id);
      log.debug('lane slots restored', { txs_in_flight: tracker.size() });
      // Heartbeats first: what we hold is kept alive from its persisted last heartbeat while the re-check below
      // reads the chain (1,000 held take seconds on a slow node; an activity found not ours is forgotten by it).
      loops[0]?.start();
      // Executing records of an earlier life stay as they are: the executor's Resync says which it still holds
      // (re-offered, same attempt) and which it lost (executor-events.ts).
      const held = listHeld(store);
      const open = held.filter((r) => !tracker.has(r.activity_id)).map((r) => r.activity_id);
      if (open.length) {
        try {
          await rechecked(open, 'startup');
        } catch (e) {
          log.warn('startup re-check failed; will retry', { error: errorText(e) });
        }
      }
      recheck.checked();
      log.info('activity manager started', { held: held.length, txs_in_flight: tracker.size() });
      setState('running');
      for (const l of loops.slice(1)) l.start();
      retention.start(deps.donePruneFirstMs ?? DONE_PRUNE_FIRST_MS);
    },
    setClaimsEnabled(enabled) {
      claimsEnabled = enabled;
      if (enabled) wake();
    },
    onTxEvent(ev) {
      batcher?.onTxEvent(ev);
      for (const one of expand(ev)) onOneTxEvent(one);
    },
    onExecutorEvent(ev) {
      route(executorEvents, ev)?.then(
        () => wake(),
        (e: unknown) => log.error('handling an executor message failed', { type: ev.type, error: errorText(e) }),
      );
    },
    async onFacts(facts) {
      await runner.run(await recheck.applyFacts(facts, 'reconciler'));
      wake();
    },
    kick() {
      wake();
    },
    async drain(timeoutMs) {
      if (state === 'running') setState('draining');
      claimsEnabled = false;
      executor.drain();
      const deadline = now() + timeoutMs;
      const busy = () =>
        listHeld(store).filter(
          (r) =>
            EXECUTING_STATES.has(r.state) ||
            FINISHING_STATES.has(r.state) ||
            r.state === 'claiming' ||
            tracker.has(r.activity_id),
        );
      while (busy().length > 0 && now() < deadline) {
        await new Promise<void>((r) => {
          drainWaiters.push(r);
          setTimeout(r, DRAIN_POLL_MS);
        });
      }
      return listHeld(store).map((r) => `${r.activity_id}:${r.state}`);
    },
    async stop() {
      setState('stopped');
      await Promise.all([...loops, retention].map((l) => l.stop()));
    },
    status() {
      const held: Record<string, number> = {};
      for (const r of listHeld(store)) held[r.state] = (held[r.state] ?? 0) + 1;
      return {
        state,
        held,
        pending_txs: tracker.size(),
        credits: dispatch.credits(),
        chain_now_s: clock.nowS(),
        last_tick_ms: state === 'running' || state === 'draining' ? lastTickMs : now(),
        claims_paused: pauses.list(),
        executor: {
          ready: link.ready(),
          types: link.types(),
          storage_available: link.storageAvailable(),
          storage_refused: storageRefused(link.storage()),
        },
      };
    },
  };
}
