/**
 * The submit path: simulate (optional) and estimate gas WITHOUT a nonce, then, in call order, wait for room in
 * the lane (≤ `maxInFlight` pending), reserve the next nonce durably, sign and broadcast. A revert in simulation
 * or estimation, or an empty wallet, is an `{ ok: false }` result that used no nonce.
 */
import type { RpcClient } from '../chain/transport.ts';
import { WcpError, type WireError } from '../internal/errors.ts';
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
  /** Resolves once every submit called so far has had its turn (for `stop`). */
  idle(): Promise<unknown>;
}

export function createSubmitter(ctx: SubmitCtx): Submitter {
  const { rpc, policy, log, address, broadcaster, recorder, lane } = ctx;
  let lock: Promise<unknown> = Promise.resolve();

  /**
   * Takes a place in line at call time: nonces are handed out strictly in the order `submit` was called, while
   * the work before the reservation (simulation, estimation) of many submits runs concurrently.
   */
  function takeTurn(): { ready: Promise<unknown>; done: () => void } {
    const ready = lock;
    let done!: () => void;
    const mine = new Promise<void>((r) => {
      done = r;
    });
    // The next turn waits for this one AND every earlier one: a submit that ends before its turn came (its
    // simulation or estimate failed) must not let the next submit reserve a nonce while an earlier one still is.
    lock = Promise.all([ready, mine]);
    return { ready, done };
  }

  function fundsError(): WireError {
    return {
      code: 'TX_INSUFFICIENT_FUNDS',
      message: `wallet ${address} cannot pay for gas (nonce ${lane.funds.nonce} waits for funds); not sending new transactions`,
      retryable: true,
    };
  }

  async function simulate(req: Pick<TxRequest, 'to' | 'data'>): Promise<SimResult> {
    try {
      const returnData = await rpc.request<string>('eth_call', [
        { from: address, to: req.to, data: req.data },
        'pending',
      ]);
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
      const g = await rpc.request<string>('eth_estimateGas', [
        { from: address, to: req.to, data: req.data, value: '0x0' },
      ]);
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

  async function submitInTurn(req: TxRequest, ready: Promise<unknown>): Promise<SubmitResult> {
    if (req.simulate) {
      const sim = await simulate(req);
      if (!sim.ok)
        return { ok: false, stage: 'simulate', error: sim.error, ...(sim.revert ? { revert: sim.revert } : {}) };
    }
    let gasLimit: bigint;
    if (req.gasLimit !== undefined) gasLimit = req.gasLimit;
    else {
      const g = await estimate(req);
      if (typeof g !== 'bigint') return g;
      gasLimit = req.minGasLimit !== undefined && req.minGasLimit > g ? req.minGasLimit : g;
    }
    await ready;
    await waitForRoom();
    if (lane.funds.blocked) return { ok: false, stage: 'funds', error: fundsError() };
    const suggestion = await broadcaster.suggestFees();
    const nonce = lane.nextNonce;
    const t = ctx.now();
    const { rec, signed, capWei, fees } = await recorder.newRecord(
      { nonce, kind: req.kind, activity_ids: [...req.activityIds], to: req.to, data: req.data, gas_limit: gasLimit },
      suggestion,
      t,
    );
    await persistReservation(ctx.store, rec, t);
    lane.nextNonce = Math.max(lane.nextNonce, nonce + 1);
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
      const turn = takeTurn();
      try {
        return await submitInTurn(req, turn.ready);
      } finally {
        turn.done();
      }
    },
    simulate,
    idle: () => lock.catch(() => undefined),
  };
}
