/**
 * The submit path: simulate (optional) and estimate gas without a nonce, then take a turn to reserve the next nonce
 * durably, sign and queue the transaction for sending. A revert in simulation or estimation, or an empty wallet, is
 * an `{ ok: false }` result that used no nonce; transient RPC failures are retried in place (`withRetry`).
 *
 * Preparation runs concurrently, so a slow node delays one submit, not the lane. Priority submits (heartbeats) take
 * their turn first and wait at most `PRIORITY_ESTIMATE_WAIT_MS` for an estimate before using their `minGasLimit`. A
 * turn serves every prepared submit waiting (at most `RESERVE_BATCH`, never past the lane's room) and persists their
 * nonces in one durable transaction; the broadcast follows the turn, in nonce order, one slot at a time (a queued slot
 * is `busy`, so the confirmer's tick does not send it first).
 */
import { type RpcClient, STEP_RETRY, withRetry } from '../chain/transport.ts';
import { errorText, WcpError, type WireError } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import type { Store } from '../store/store.ts';
import type { Broadcaster } from './broadcaster.ts';
import { classifyRpcError } from './classify.ts';
import { decodeRevertError } from './decode.ts';
import { gasWithMargin } from './fees.ts';
import type { LaneState } from './lane-state.ts';
import { persistReservations, type Slot } from './nonce-lane.ts';
import type { Recorder } from './record.ts';
import { type SimResult, type SubmitResult, slotRef, type TxPolicy, type TxRequest } from './types.ts';

const HEX = /^0x[0-9a-fA-F]*$/;
/** How long a priority submit waits for its gas estimate before using its `minGasLimit` (a slow node). */
export const PRIORITY_ESTIMATE_WAIT_MS = 300;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

export interface SubmitCtx {
  store: Store;
  rpc: RpcClient;
  policy: TxPolicy;
  log: Logger;
  now: () => number;
  address: string;
  broadcaster: Broadcaster;
  recorder: Recorder;
  lane: LaneState;
  /** The error to throw when the manager is not running, or undefined while it is. */
  notRunning: () => WcpError | undefined;
}

export interface Submitter {
  submit(req: TxRequest): Promise<SubmitResult>;
  simulate(req: Pick<TxRequest, 'to' | 'data'>): Promise<SimResult>;
  /** Resolves once every submit under way has ended (for `stop`). */
  idle(): Promise<unknown>;
  /** Whether a turn is reserving nonces right now (a delegation waits for it to end). */
  reserving(): boolean;
}

/** Most submits reserved in one turn (one durable commit). */
export const RESERVE_BATCH = 64;

/** What a turn did for one submit: its result and, when it got a nonce, its first send (queued). */
interface Reserved {
  res: SubmitResult;
  sent?: Promise<void>;
}

/** A prepared submit waiting for a turn. */
interface Waiting {
  req: TxRequest;
  gasLimit: bigint;
  done: (r: Reserved) => void;
  fail: (e: unknown) => void;
}

export function createSubmitter(ctx: SubmitCtx): Submitter {
  const { rpc, policy, log, address, broadcaster, recorder, lane } = ctx;
  /** Prepared submits waiting for a turn: priority ones, then the others, each in arrival order. */
  const high: Waiting[] = [];
  const normal: Waiting[] = [];
  let reserving = false;
  /** A turn (`reserveBatch`) is under way: nonces are being handed out. */
  let inTurn = false;
  /** Submits under way (for `idle`). */
  const active = new Set<Promise<unknown>>();
  const retryLog = (what: string) => (e: unknown, attempt: number, waitMs: number) =>
    log.debug(`${what} failed transiently; retrying`, { attempt, retry_in_ms: waitMs, error: errorText(e) });

  function fundsError(): WireError {
    return {
      code: 'TX_INSUFFICIENT_FUNDS',
      message: `wallet ${address} cannot pay for gas (nonce ${lane.funds.nonce} waits for funds); not sending new transactions`,
      retryable: true,
    };
  }

  async function simulate(req: Pick<TxRequest, 'to' | 'data'>): Promise<SimResult> {
    try {
      const returnData = await withRetry(
        () => rpc.request<string>('eth_call', [{ from: address, to: req.to, data: req.data }, 'pending']),
        STEP_RETRY,
        retryLog('simulation'),
      );
      return { ok: true, returnData };
    } catch (e) {
      const c = classifyRpcError(e);
      if (c.cls !== 'reverted')
        throw new WcpError(c.code, `simulation failed: ${c.message}`, { retryable: c.retryable });
      const revert = decodeRevertError(e);
      return {
        ok: false,
        error: { code: 'TX_REVERTED', message: `simulation reverted: ${revert.message}`, retryable: false },
        revert,
      };
    }
  }

  async function estimate(req: TxRequest): Promise<bigint | SubmitResult> {
    if (req.estimateData !== undefined) {
      const { estimateData, ...plain } = req;
      const twin = await estimate({ ...plain, data: estimateData });
      if (typeof twin === 'bigint' || twin.ok || twin.stage !== 'estimate') return twin;
      log.debug('estimate of the reverting twin reverted; estimating the calldata itself', { kind: req.kind });
      // The batch's `minGasLimit` (its calls' worst cases) still holds this one up.
      return await estimate(plain);
    }
    try {
      const g = await withRetry(
        () => rpc.request<string>('eth_estimateGas', [{ from: address, to: req.to, data: req.data, value: '0x0' }]),
        STEP_RETRY,
        retryLog('gas estimation'),
      );
      return gasWithMargin(BigInt(g), policy.gasLimitMarginPercent);
    } catch (e) {
      const c = classifyRpcError(e);
      if (c.cls === 'reverted') {
        const revert = decodeRevertError(e);
        return {
          ok: false,
          stage: 'estimate',
          error: { code: 'TX_REVERTED', message: `gas estimation reverted: ${revert.message}`, retryable: false },
          revert,
        };
      }
      if (c.cls === 'insufficient_funds')
        return { ok: false, stage: 'funds', error: { code: c.code, message: c.message, retryable: true } };
      throw new WcpError(c.code, `gas estimation failed: ${c.message}`, { retryable: c.retryable });
    }
  }

  async function waitForRoom() {
    while (!ctx.notRunning() && (lane.held || lane.pendingCount() >= policy.maxInFlight)) await lane.changed();
    const err = ctx.notRunning();
    if (err) throw err;
  }

  /**
   * A priority submit's estimate, bounded: past `PRIORITY_ESTIMATE_WAIT_MS` (or on a transient failure) its
   * `minGasLimit` is used, the worst case of the call (a heartbeat must not wait for a slow node).
   */
  async function boundedEstimate(req: TxRequest, floor: bigint): Promise<bigint | SubmitResult> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<'late'>((r) => {
      timer = setTimeout(() => r('late'), PRIORITY_ESTIMATE_WAIT_MS);
    });
    const est = estimate(req).catch((e: unknown) => {
      log.debug('priority estimate failed; using the gas floor', { kind: req.kind, error: errorText(e) });
      return floor;
    });
    try {
      const g = await Promise.race([est, late]);
      if (g === 'late') {
        log.debug('priority estimate slow; using the gas floor', { kind: req.kind, gas_limit: floor });
        return floor;
      }
      return g;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Simulation and gas limit, before any turn: a gas limit, or the refusal that used no nonce. */
  async function prepare(req: TxRequest): Promise<bigint | SubmitResult> {
    if (req.simulate) {
      const sim = await simulate(req);
      if (!sim.ok)
        return { ok: false, stage: 'simulate', error: sim.error, ...(sim.revert ? { revert: sim.revert } : {}) };
    }
    if (req.gasLimit !== undefined) return req.gasLimit;
    const g =
      req.priority && req.minGasLimit !== undefined ? await boundedEstimate(req, req.minGasLimit) : await estimate(req);
    if (typeof g !== 'bigint') return g;
    return req.minGasLimit !== undefined && req.minGasLimit > g ? req.minGasLimit : g;
  }

  /** The send queue: the first broadcast of each reserved slot, one at a time, in reservation (= nonce) order. */
  let sendTail: Promise<void> = Promise.resolve();

  /** Queues the first broadcast of `slot` (reserved, persisted) behind those reserved before it. */
  function queueFirstSend(slot: Slot, kind: TxRequest['kind']): Promise<void> {
    // Busy until its turn in the queue: the confirmer's tick would otherwise send it ahead of lower nonces.
    slot.busy = true;
    let answered: () => void = () => {};
    const wire = new Promise<void>((r) => {
      answered = r;
    });
    const sent = sendTail.then(async () => {
      await recorder.sendGuarded(slot, rpc.bestBlock(), 'first send failed; the tick re-sends it', undefined, answered);
      const { rec, hash } = slot;
      log.debug('submitted', {
        nonce: rec.nonce,
        kind,
        tx_hash: hash,
        activity_ids: rec.activity_ids,
        gas_limit: rec.gas_limit,
      });
      lane.emit({ type: 'submitted', ...slotRef(rec), hash });
    });
    // The next slot goes on the wire once the nodes answered this one: recording the answer (the `sent` state, a
    // commit that need not be durable) is not a reason to hold the lane. sendGuarded logs and flags its own
    // failures; the queue goes on whatever one send did.
    sendTail = Promise.race([wire, sent]).catch(() => {});
    return sent;
  }

  const withdrawn: SubmitResult = {
    ok: false,
    stage: 'withdrawn',
    error: { code: 'TX_REFUSED', message: 'withdrawn by its caller before a nonce was reserved', retryable: false },
  };

  /** One turn: reserves `batch` (see the file comment); settles every member. */
  async function reserveBatch(batch: Waiting[]): Promise<void> {
    if (lane.funds.blocked) {
      for (const w of batch) w.done({ res: { ok: false, stage: 'funds', error: fundsError() } });
      return;
    }
    let suggestion: Awaited<ReturnType<Broadcaster['suggestFees']>>;
    try {
      suggestion = await withRetry(() => broadcaster.suggestFees(), STEP_RETRY, retryLog('fee read'));
    } catch (e) {
      for (const w of batch) w.fail(e);
      return;
    }
    let nonce = lane.nextNonce;
    let t = ctx.now();
    const made: Array<{ w: Waiting } & Awaited<ReturnType<typeof recorder.newRecord>>> = [];
    for (const w of batch) {
      const { req, gasLimit } = w;
      // Asked last, with no await before the nonce and the record's time are taken: what the caller answers holds
      // for the tx it gets (earlier members of the batch already hold theirs in this order).
      if (req.stillWanted && !req.stillWanted()) {
        w.done({ res: withdrawn });
        continue;
      }
      t = ctx.now();
      try {
        const f = {
          nonce,
          kind: req.kind,
          activity_ids: [...req.activityIds],
          to: req.to,
          data: req.data,
          ...(req.calls ? { calls: req.calls } : {}),
        };
        made.push({ w, ...(await recorder.newRecord({ ...f, gas_limit: gasLimit }, suggestion, t)) });
        nonce++;
      } catch (e) {
        w.fail(e);
      }
    }
    try {
      await persistReservations(
        ctx.store,
        made.map((m) => m.rec),
        t,
      );
    } catch (e) {
      for (const m of made) m.w.fail(e);
      return;
    }
    lane.nextNonce = Math.max(lane.nextNonce, nonce);
    for (const { w, rec, signed, capWei, fees } of made) {
      w.req.onNonce?.(rec.nonce);
      const slot = lane.newSlot(rec, signed, capWei);
      lane.slots.set(rec.nonce, slot);
      const sent = queueFirstSend(slot, w.req.kind);
      const res: SubmitResult = {
        ok: true,
        nonce: rec.nonce,
        hash: signed.hash,
        gasLimit: w.gasLimit,
        maxFeePerGas: fees.maxFeePerGas,
        maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
      };
      w.done({ res, sent });
    }
  }

  /** Runs turns while submits wait; one at a time. */
  async function reserveLoop(): Promise<void> {
    reserving = true;
    try {
      while (high.length + normal.length > 0) {
        try {
          await waitForRoom();
        } catch (e) {
          for (const w of [...high.splice(0), ...normal.splice(0)]) w.fail(e);
          break;
        }
        // A delegation may have begun during the hop out of waitForRoom: checked again with no await before the turn
        // is marked (the delegation takes its nonce only while no turn is marked).
        if (lane.held) continue;
        const room = Math.max(1, policy.maxInFlight - lane.pendingCount());
        const n = Math.min(room, RESERVE_BATCH);
        const batch = high.splice(0, n);
        batch.push(...normal.splice(0, n - batch.length));
        inTurn = true;
        try {
          await reserveBatch(batch);
        } catch (e) {
          // A member already settled keeps its result (a promise settles once); the others get the error.
          for (const w of batch) w.fail(e);
        } finally {
          inTurn = false;
        }
      }
    } finally {
      reserving = false;
    }
  }

  /** Waits for a turn and reserves `req` in it. */
  function reserve(req: TxRequest, gasLimit: bigint): Promise<Reserved> {
    return new Promise<Reserved>((done, fail) => {
      (req.priority === true ? high : normal).push({ req, gasLimit, done, fail });
      if (!reserving) void reserveLoop();
    });
  }

  return {
    async submit(req) {
      const err = ctx.notRunning();
      if (err) throw err;
      if (!ADDRESS.test(req.to) || !HEX.test(req.data) || req.data.length % 2 !== 0) {
        throw new WcpError('INTERNAL', `bad tx request: to must be an address and data 0x-hex (kind ${req.kind})`);
      }
      if (lane.funds.blocked) return { ok: false, stage: 'funds', error: fundsError() };
      // The fee read its turn will ask for starts now, beside the simulation and the estimate (the broadcaster
      // shares a read under way and caches the result): on a cold cache that round trip is off the path to the send.
      broadcaster.suggestFees().catch(() => {});
      const run = (async () => {
        const prepared = await prepare(req);
        if (typeof prepared !== 'bigint') return prepared;
        const out = await reserve(req, prepared);
        // Resolves once the first send was made (as before the queue): callers act on a tx that is on the wire.
        await out.sent;
        return out.res;
      })();
      active.add(run);
      try {
        return await run;
      } finally {
        active.delete(run);
      }
    },
    simulate,
    idle: () => Promise.allSettled([...active]),
    reserving: () => inTurn,
  };
}
