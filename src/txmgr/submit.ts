/**
 * The submit path: simulate (optional) and estimate gas WITHOUT a nonce, then take a turn to reserve the next
 * nonce durably, sign and broadcast. A revert in simulation or estimation, or an empty wallet, is an
 * `{ ok: false }` result that used no nonce.
 *
 * No submit waits on another's slow call: the preparation (simulation, estimate) of many submits runs at once and
 * a submit takes its turn only once prepared, so a node that takes seconds per estimate delays that submit alone.
 * Priority submits (heartbeats: `TxRequest.priority`) take their turn before every normal one waiting, and wait
 * at most `PRIORITY_ESTIMATE_WAIT_MS` for their estimate before using their `minGasLimit`. Transient RPC failures
 * (reset, timeout, 5xx) of the simulation, estimate and fee read are retried in place (`withRetry`).
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
import { persistReservation } from './nonce-lane.ts';
import type { Recorder } from './record.ts';
import type { SimResult, SubmitResult, TxPolicy, TxRequest } from './types.ts';

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
}

/** One turn at a time in the reservation section; priority waiters go first, then the others in arrival order. */
function createTurns() {
  let busy = false;
  const high: Array<() => void> = [];
  const normal: Array<() => void> = [];
  return {
    async acquire(priority: boolean): Promise<void> {
      if (!busy) {
        busy = true;
        return;
      }
      await new Promise<void>((r) => (priority ? high : normal).push(r));
    },
    release(): void {
      const next = high.shift() ?? normal.shift();
      if (next) next();
      else busy = false;
    },
  };
}

export function createSubmitter(ctx: SubmitCtx): Submitter {
  const { rpc, policy, log, address, broadcaster, recorder, lane } = ctx;
  const turns = createTurns();
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
    while (!ctx.notRunning() && lane.pendingCount() >= policy.maxInFlight) await lane.changed();
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

  async function submitInTurn(req: TxRequest, gasLimit: bigint): Promise<SubmitResult> {
    await waitForRoom();
    if (lane.funds.blocked) return { ok: false, stage: 'funds', error: fundsError() };
    const suggestion = await withRetry(() => broadcaster.suggestFees(), STEP_RETRY, retryLog('fee read'));
    // Asked last, with no await before the nonce and the record's time are taken: what the caller answers holds
    // for the tx it gets.
    if (req.stillWanted && !req.stillWanted())
      return {
        ok: false,
        stage: 'withdrawn',
        error: { code: 'TX_REFUSED', message: 'withdrawn by its caller before a nonce was reserved', retryable: false },
      };
    const nonce = lane.nextNonce;
    const t = ctx.now();
    const { rec, signed, capWei, fees } = await recorder.newRecord(
      { nonce, kind: req.kind, activity_ids: [...req.activityIds], to: req.to, data: req.data, gas_limit: gasLimit },
      suggestion,
      t,
    );
    await persistReservation(ctx.store, rec, t);
    lane.nextNonce = Math.max(lane.nextNonce, nonce + 1);
    req.onNonce?.(nonce);
    const slot = lane.newSlot(rec, signed, capWei);
    lane.slots.set(nonce, slot);
    await recorder.sendGuarded(slot, rpc.bestBlock(), 'first send failed; the tick re-sends it');
    log.debug('submitted', { nonce, kind: req.kind, tx_hash: signed.hash, activity_ids: req.activityIds });
    lane.emit({ type: 'submitted', kind: req.kind, nonce, activityIds: rec.activity_ids, hash: signed.hash });
    return {
      ok: true,
      nonce,
      hash: signed.hash,
      gasLimit,
      maxFeePerGas: fees.maxFeePerGas,
      maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
    };
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
        await turns.acquire(req.priority === true);
        try {
          return await submitInTurn(req, prepared);
        } finally {
          turns.release();
        }
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
  };
}
