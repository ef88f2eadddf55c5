/**
 * The call batcher (EIP-7702): the lifecycle's chain calls (claim, heartbeat, complete, fail, resume) go out packed
 * into as few transactions as possible, each one a call from the wallet to itself that runs the calls through the
 * batch executor the wallet delegates to, in its try mode (a call that fails costs only itself and is reported per
 * index). It stands where the nonce lane stood (`TxSender`): a step submits one call as before and gets the result
 * of the transaction that carried it (its nonce and hash), so every step, the tracker and the settle decisions keep
 * their one-call view; `expandBatchEvent` turns the batch's events back into one event per call.
 *
 * When a batch leaves:
 *  - at once when a claim or a heartbeat is waiting (they are time-critical: a slow claim loses its race, a late
 *    heartbeat loses the activity), in a batch of their own (never behind a finishing call's simulation or slow
 *    estimate), the other calls that are ready leaving beside it in a second one;
 *  - otherwise when no batch of ours is waiting to be mined (one batch per block in steady state: the calls that
 *    became ready while the last one waited leave together as soon as it is mined), when the waiting calls fill a
 *    batch, or after `holdMaxMs` whatever happens (a lost event never holds calls back).
 * A batch is bounded by `gasCap` (a quarter of the block gas limit, at most 2^24 = the per-transaction cap of
 * EIP-7825) by each call's gas guess, by `MAX_CALLS` calls and by `MAX_CALLDATA_BYTES` of calldata.
 *
 * Before sending, the whole batch is simulated with one `eth_call` from the wallet to itself (the executor's
 * self-only `simulate`): calls that asked to be simulated and would fail are left out (their submit resolves as a
 * refused simulation, no gas spent). One estimate, one signature and one durable lane record serve the batch; the
 * record lists its calls, so a restart still splits its receipt per call.
 */
import {
  decodeSimulate,
  encodeExecute,
  encodeSimulate,
  MODE_BATCH_DEFAULT,
  tryExecuteFailures,
} from '../chain/batch-executor.ts';
import { errorText } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import type { BatchCall, CallKind } from '../store/records.ts';
import { decodeRevertData } from '../txmgr/decode.ts';
import type { SimResult, SubmitResult, TxEvent, TxLog, TxRequest } from '../txmgr/types.ts';
import type { TxSender } from './context.ts';

/** How batch calldata is made and read: the batch executor's ABI (`src/chain/batch-executor.ts`). */
export interface BatchCodec {
  /** Calldata of the wallet's ERC-7821 `execute` in batch + try mode running `calls` in order. */
  encodeExecute(calls: ReadonlyArray<{ to: string; data: string }>): string;
  /** The same batch in the default execution mode (reverts when any call fails): what its gas is estimated on. */
  encodeExecuteStrict(calls: ReadonlyArray<{ to: string; data: string }>): string;
  /** Calldata of the executor's self-only `simulate` of `calls` (for an `eth_call` from the wallet to itself). */
  encodeSimulate(calls: ReadonlyArray<{ to: string; data: string }>): string;
  /** Per call, in order: whether it succeeded, and its return (or revert) data. */
  decodeSimulate(returnData: string): Array<{ ok: boolean; returnData: string }>;
  /** The calls of a mined batch that failed (its `ERC7579TryExecuteFail` logs from `wallet`): index → revert data. */
  failures(logs: readonly TxLog[], wallet: string): Map<number, string>;
}

/** The pinned batch executor's codec. */
export const BATCH_CODEC: BatchCodec = {
  encodeExecute,
  encodeExecuteStrict: (calls) => encodeExecute(calls, MODE_BATCH_DEFAULT),
  encodeSimulate,
  decodeSimulate,
  failures: tryExecuteFailures,
};

export interface BatcherOptions {
  /** The nonce lane. */
  txm: TxSender;
  codec: BatchCodec;
  /** The worker's wallet: every batch is a transaction to it. */
  wallet: string;
  log: Logger;
  now: () => number;
  /** Most gas one batch may use (see the file comment). */
  gasCap: () => bigint;
  /** Longest a call waits for the batch before it (see the file comment). */
  holdMaxMs?: number;
}

export interface Batcher extends TxSender {
  /** The lane's events, unsplit: a batch mined, failed or re-sent frees the next one. */
  onTxEvent(ev: TxEvent): void;
  /** Calls waiting for a batch, and batches sent but not yet mined. */
  status(): { waiting: number; unmined: number };
  /** Sends what waits now and resolves once every batch under way has its nonce (for drain and stop). */
  flush(): Promise<void>;
}

/** Longest a call waits for the batch before it to be mined. */
export const HOLD_MAX_MS = 2_000;
/** Most calls in one batch. */
export const MAX_CALLS = 256;
/** Most calldata of one batch (nodes refuse transactions over 128 KiB; room is kept for the envelope). */
export const MAX_CALLDATA_BYTES = 96 * 1024;
/** The EIP-7825 per-transaction gas cap. */
export const TX_GAS_CAP = 1n << 24n;

/**
 * A call's gas as the batch's packing and floor assume it: its own worst-case floor where it has one (claims and
 * heartbeats), else a guess from its kind and calldata (a stored string costs ~22.1k gas per 32 bytes).
 */
export function gasGuess(req: Pick<TxRequest, 'kind' | 'data' | 'minGasLimit'>): bigint {
  if (req.minGasLimit !== undefined) return req.minGasLimit;
  const bytes = BigInt(Math.max(0, (req.data.length - 2) / 2));
  return (req.kind === 'resume' ? 150_000n : 110_000n) + bytes * 700n;
}

/** The gas cap of one batch from the block gas limit: a quarter of it, never above 2^24. */
export function batchGasCap(blockGasLimit: bigint): bigint {
  const q = blockGasLimit / 4n;
  return q < TX_GAS_CAP ? q : TX_GAS_CAP;
}

const URGENT: ReadonlySet<string> = new Set(['claim', 'claim_batch', 'heartbeat']);

/** A call its caller still wants sent (`TxRequest.stillWanted`). */
const wanted = (m: Member): boolean => !m.req.stillWanted || m.req.stillWanted();

interface Member {
  req: TxRequest;
  at: number;
  resolve: (r: SubmitResult) => void;
  reject: (e: unknown) => void;
}

const withdrawn: SubmitResult = {
  ok: false,
  stage: 'withdrawn',
  error: { code: 'TX_REFUSED', message: 'withdrawn by its caller before a nonce was reserved', retryable: false },
};

/** A batcher over the lane `o.txm`. */
export function createBatcher(o: BatcherOptions): Batcher {
  const { txm, codec, log } = o;
  const holdMaxMs = o.holdMaxMs ?? HOLD_MAX_MS;
  const waiting: Member[] = [];
  /** Nonces of batches sent and not yet mined (or failed). */
  const unmined = new Set<number>();
  /** Batches being prepared (simulation, estimate, a turn in the lane). */
  const building = new Set<Promise<void>>();
  let scheduled = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  function schedule() {
    if (scheduled) return;
    scheduled = true;
    // Every call submitted in this turn of the event loop leaves in the same batch.
    setImmediate(() => {
      scheduled = false;
      flushReady(false);
    });
  }

  /** Takes from `waiting` what fits one batch, in arrival order. */
  /**
   * Takes from `waiting` what fits one batch, in arrival order, of one class: the urgent calls (claims, heartbeats:
   * never simulated, each with its own gas floor) or the others. Liveness never waits on a finishing call's
   * simulation or slow estimate, and a heartbeat batch's floor covers all its calls when its estimate is late.
   */
  function take(urgentClass: boolean): Member[] {
    const cap = o.gasCap();
    const out: Member[] = [];
    let gas = 0n;
    let bytes = 0;
    for (let i = 0; i < waiting.length && out.length < MAX_CALLS; ) {
      const m = waiting[i] as Member;
      if (URGENT.has(m.req.kind) !== urgentClass) {
        i++;
        continue;
      }
      const g = gasGuess(m.req);
      const b = (m.req.data.length - 2) / 2 + 128;
      if (out.length > 0 && (gas + g > cap || bytes + b > MAX_CALLDATA_BYTES)) break;
      out.push(m);
      waiting.splice(i, 1);
      gas += g;
      bytes += b;
    }
    return out;
  }

  /** Whether the calls waiting fill a batch. */
  function full(): boolean {
    if (waiting.length >= MAX_CALLS) return true;
    let gas = 0n;
    for (const m of waiting) gas += gasGuess(m.req);
    return gas >= o.gasCap();
  }

  function flushReady(force: boolean) {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    while (waiting.length > 0) {
      const oldest = (waiting[0] as Member).at;
      const urgent = waiting.some((m) => URGENT.has(m.req.kind));
      // A batch being prepared counts as unmined: it is on its way into the next block.
      const idle = unmined.size === 0 && building.size === 0;
      if (!(force || urgent || idle || full() || o.now() - oldest >= holdMaxMs)) {
        timer = setTimeout(() => flushReady(false), Math.max(1, holdMaxMs - (o.now() - oldest)));
        return;
      }
      // Urgent calls in a batch of their own; the others ready then leave beside it, in a second one.
      const batches = urgent ? [take(true), take(false)] : [take(false)];
      for (const members of batches) {
        if (members.length === 0) continue;
        const p: Promise<void> = send(members).finally(() => {
          building.delete(p);
          if (waiting.length > 0) flushReady(false);
        });
        building.add(p);
      }
    }
  }

  /** Resolves every member with `res`. */
  const settle = (members: readonly Member[], res: SubmitResult) => {
    for (const m of members) m.resolve(res);
  };

  async function send(all: Member[]): Promise<void> {
    // Asked before the batch is made, and again at its turn for a nonce (`stillWanted` of the batch): an unwanted
    // call (a heartbeat of an activity that ended, or whose complete or fail took a nonce meanwhile: mined after it,
    // the contract would skip it) stays out. Heartbeats never share a batch with completes or fails (`take`).
    const members = all.filter((m) => {
      if (wanted(m)) return true;
      m.resolve(withdrawn);
      return false;
    });
    if (members.length === 0) return;
    try {
      const kept = await simulated(members);
      if (kept.length === 0) return;
      const calls: BatchCall[] = kept.map((m) => ({
        kind: m.req.kind as CallKind,
        activity_ids: [...m.req.activityIds],
      }));
      const req: TxRequest = {
        kind: 'batch',
        activityIds: [...new Set(kept.flatMap((m) => m.req.activityIds))],
        calls,
        to: o.wallet,
        data: codec.encodeExecute(kept.map((m) => m.req)),
        estimateData: codec.encodeExecuteStrict(kept.map((m) => m.req)),
        // Never below the sum of its calls' worst cases, whatever the estimate says. A call's gas depends on the
        // state at its turn in the block: the claims and completes mined before it in the same block (another
        // batch of ours among them) change the worker's activity set it updates, so an estimate taken against
        // the last block can fall short by more than the margin, and a batch out of gas loses every call. A
        // claim skipping an id now may claim it when mined; a heartbeat's floor stands in for a late estimate;
        // should a call begin to fail between the simulation and the estimate, the try-mode estimate alone
        // would starve the others. Gas is paid as used: the floor only reserves block room.
        minGasLimit: kept.reduce((s, m) => s + gasGuess(m.req), 0n),
        ...(kept.some((m) => m.req.priority) ? { priority: true } : {}),
        stillWanted: () => kept.every(wanted),
        onNonce: (nonce) => {
          unmined.add(nonce);
          for (const m of kept) m.req.onNonce?.(nonce);
        },
      };
      // `onNonce` has marked it unmined already.
      const res = await txm.submit(req);
      if (res.ok || res.stage !== 'withdrawn') return settle(kept, res);
      // A call became unwanted at the turn: it is withdrawn, the others wait for the next batch.
      const again = kept.filter((m) => {
        if (wanted(m)) return true;
        m.resolve(withdrawn);
        return false;
      });
      waiting.unshift(...again);
      if (again.length) schedule();
    } catch (e) {
      for (const m of members) m.reject(e);
    }
  }

  /**
   * Runs the executor's `simulate` over the batch; the calls that asked for a simulation and would fail resolve as
   * refused (no nonce, no gas), the others are returned. With nobody asking, no simulation is made.
   */
  async function simulated(members: Member[]): Promise<Member[]> {
    if (!members.some((m) => m.req.simulate)) return members;
    const sim = await txm.simulate({
      kind: 'batch',
      activityIds: [],
      to: o.wallet,
      data: codec.encodeSimulate(members.map((m) => m.req)),
    });
    if (!sim.ok) {
      // The simulation itself reverted (not one call: the executor reports those per index): nothing is sent.
      log.warn('batch simulation reverted; its calls are refused', { error: sim.error.message, calls: members.length });
      settle(members, {
        ok: false,
        stage: 'simulate',
        error: sim.error,
        ...(sim.revert ? { revert: sim.revert } : {}),
      });
      return [];
    }
    const results = codec.decodeSimulate(sim.returnData);
    const kept: Member[] = [];
    members.forEach((m, i) => {
      const r = results[i];
      if (!m.req.simulate || r?.ok !== false) {
        kept.push(m);
        return;
      }
      const revert = decodeRevertData(r.returnData);
      m.resolve({
        ok: false,
        stage: 'simulate',
        error: { code: 'TX_REVERTED', message: `simulation reverted: ${revert.message}`, retryable: false },
        revert,
      });
    });
    return kept;
  }

  async function simulateMany(reqs: readonly TxRequest[]): Promise<SimResult[]> {
    const sim = await txm.simulate({
      kind: 'batch',
      activityIds: [],
      to: o.wallet,
      data: codec.encodeSimulate(reqs),
    });
    if (!sim.ok) return reqs.map(() => sim);
    const results = codec.decodeSimulate(sim.returnData);
    return reqs.map((_, i): SimResult => {
      const r = results[i];
      if (r?.ok) return { ok: true, returnData: r.returnData };
      const revert = decodeRevertData(r?.returnData);
      return {
        ok: false,
        error: { code: 'TX_REVERTED', message: `simulation reverted: ${revert.message}`, retryable: false },
        revert,
      };
    });
  }

  return {
    submit(req) {
      return new Promise<SubmitResult>((resolve, reject) => {
        waiting.push({ req, at: o.now(), resolve, reject });
        schedule();
      });
    },
    simulate: (req) => txm.simulate(req),
    async simulateMany(reqs) {
      if (reqs.length === 0) return [];
      try {
        return await simulateMany(reqs);
      } catch (e) {
        log.debug('batched simulation failed; simulating one by one', { error: errorText(e) });
        return await Promise.all(reqs.map((r) => txm.simulate(r)));
      }
    },
    inFlight: () => txm.inFlight(),
    onTxEvent(ev) {
      if (!('kind' in ev) || ev.kind !== 'batch') return;
      if (ev.type === 'mined' || ev.type === 'failed' || ev.type === 'confirmed') {
        if (unmined.delete(ev.nonce)) flushReady(false);
      } else if (ev.type === 'reorged') unmined.add(ev.nonce);
    },
    status: () => ({ waiting: waiting.length, unmined: unmined.size }),
    async flush() {
      flushReady(true);
      while (building.size > 0) await Promise.allSettled([...building]);
    },
  };
}

/**
 * One event per call of a batch's event (others pass as they are): each call's event carries the call's kind and
 * ids, and a mined or confirmed batch's status per call (a call the executor reports failed is `reverted`, with its
 * own revert decoded). The receipt's logs go with every call: the settle decisions read the events of their own ids.
 */
export function expandBatchEvent(ev: TxEvent, failures: (logs: readonly TxLog[]) => Map<number, string>): TxEvent[] {
  if (!('calls' in ev) || ev.kind !== 'batch' || !ev.calls) return [ev];
  const calls = ev.calls;
  const failed = (ev.type === 'mined' || ev.type === 'confirmed') && ev.status === 'success' ? failures(ev.logs) : null;
  return calls.map((c, i) => {
    const { calls: _, ...rest } = ev;
    const one = { ...rest, kind: c.kind, activityIds: c.activity_ids } as TxEvent;
    const revertData = failed?.get(i);
    if (revertData === undefined || (one.type !== 'mined' && one.type !== 'confirmed')) return one;
    return { ...one, status: 'reverted', revert: decodeRevertData(revertData) } as TxEvent;
  });
}
