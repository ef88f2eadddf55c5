/**
 * The broadcaster: node fee suggestions, signing a lane record, sending the signed bytes to every endpoint and
 * turning the answers into one outcome, and bumping a slot that is not getting mined.
 *
 * Outcomes, most telling first: any endpoint accepted (or "already known") → `accepted`; "nonce too low" →
 * the confirmer checks our hashes; "insufficient funds" → the lane pauses new work; "replacement underpriced" /
 * "fee too low" → bump at the next tick; no answer at all → `uncertain`: the nonce is kept and the same bytes
 * are sent again (idempotent); a node refusing for any other reason → `rejected` (logged, retried with bumps;
 * refused `refusedAbortAfter` times while no node ever accepted it, the confirmer gives the slot up).
 */
import type { TransactionLike } from 'ethers';
import { keccak256 } from 'ethers';
import { errorText } from '../internal/errors.ts';
import type { RpcClient } from '../chain/transport.ts';
import type { Logger } from '../internal/logger.ts';
import type { Store } from '../store/store.ts';
import { classifyRpcError, type TxErrorClass } from './classify.ts';
import { bumpFees, type FeeSuggestion, type Fees } from './fees.ts';
import { persistLane, type Slot } from './nonce-lane.ts';
import { slotRef, type TxEvent, type TxPolicy } from './types.ts';
import type { LaneTx } from '../store/records.ts';
import { ethersAuthorization } from './authorization.ts';

export type SendResult =
  | 'accepted'
  | 'nonce_too_low'
  | 'insufficient_funds'
  | 'replacement_underpriced'
  | 'fee_too_low'
  | 'uncertain'
  | 'rejected';

export interface BroadcastCtx {
  store: Store;
  rpc: RpcClient;
  policy: TxPolicy;
  log: Logger;
  now: () => number;
  chainId: number;
  address: string;
  /** Signs with the wallet held in the manager's closure. */
  signTx: (tx: TransactionLike) => Promise<string>;
  emit: (ev: TxEvent) => void;
  /** Shared: whether the wallet is out of funds (new submits are refused while set). */
  funds: { blocked: boolean; nonce: number };
}

export interface Broadcaster {
  suggestFees(): Promise<FeeSuggestion>;
  /** Signs a lane record as it stands (deterministic: same fields, same bytes and hash). */
  signRecord(rec: LaneTx): Promise<{ raw: string; hash: string }>;
  /**
   * Sends the slot's current bytes everywhere and updates the slot's flags from the answers. `onAnswered` is called
   * once every endpoint answered (or failed), before the answers are recorded (the lane's send queue moves on then).
   */
  send(slot: Slot, onAnswered?: () => void): Promise<SendResult>;
  /** Re-signs with higher fees (or re-sends as is at the cap), persisting the new hash before sending. */
  bump(slot: Slot, head: number, why: string): Promise<SendResult>;
}

const RANK: Record<SendResult, number> = {
  accepted: 0,
  nonce_too_low: 1,
  insufficient_funds: 2,
  replacement_underpriced: 3,
  fee_too_low: 4,
  uncertain: 5,
  rejected: 6,
};

function resultOf(cls: TxErrorClass): SendResult {
  switch (cls) {
    case 'already_known':
      return 'accepted';
    case 'nonce_too_low':
    case 'insufficient_funds':
    case 'replacement_underpriced':
    case 'fee_too_low':
      return cls;
    case 'rejected':
    case 'reverted':
      return 'rejected';
    default:
      return 'uncertain';
  }
}

function feesOf(rec: LaneTx): Fees {
  return { maxFeePerGas: BigInt(rec.max_fee_per_gas), maxPriorityFeePerGas: BigInt(rec.max_priority_fee_per_gas) };
}

export function createBroadcaster(ctx: BroadcastCtx): Broadcaster {
  const log = ctx.log;
  let cache: { at: number; s: FeeSuggestion } | undefined;
  /** The read under way: callers meanwhile share it (a submit starts one ahead of its turn, see submit.ts). */
  let reading: Promise<FeeSuggestion> | undefined;

  async function readBaseFee(): Promise<bigint> {
    try {
      // baseFeePerGas has N+1 entries: the last is the NEXT block's base fee.
      const h = await ctx.rpc.request<{ baseFeePerGas?: string[] }>('eth_feeHistory', ['0x1', 'latest', []]);
      const last = h.baseFeePerGas?.[h.baseFeePerGas.length - 1];
      if (last === undefined) throw new Error('no baseFeePerGas in eth_feeHistory');
      return BigInt(last);
    } catch {
      const b = await ctx.rpc.request<{ baseFeePerGas?: string } | null>('eth_getBlockByNumber', ['latest', false]);
      return BigInt(b?.baseFeePerGas ?? 0);
    }
  }

  async function readPriorityFee(): Promise<bigint> {
    try {
      return BigInt(await ctx.rpc.request<string>('eth_maxPriorityFeePerGas', []));
    } catch (e) {
      log.debug('eth_maxPriorityFeePerGas unavailable; using the policy floor', { error: errorText(e) });
      return 0n;
    }
  }

  async function suggestFees(): Promise<FeeSuggestion> {
    const t = ctx.now();
    if (cache && t - cache.at < ctx.policy.feeCacheMs) return cache.s;
    if (reading) return reading;
    // The two reads are independent: asked together, a cache miss costs one round trip instead of two.
    reading = Promise.all([readBaseFee(), readPriorityFee()])
      .then(([baseFee, priorityFee]) => {
        const s = { baseFee, priorityFee };
        cache = { at: t, s };
        return s;
      })
      .finally(() => {
        reading = undefined;
      });
    return reading;
  }

  async function signRecord(rec: LaneTx): Promise<{ raw: string; hash: string }> {
    const auths = rec.authorization_list;
    const raw = await ctx.signTx({
      // Type 4 (EIP-7702) when the record carries an authorization list: signed as stored, so every re-sign (a
      // bump, a re-send after a restart) carries the very same authorization.
      type: auths ? 4 : 2,
      ...(auths ? { authorizationList: auths.map(ethersAuthorization) } : {}),
      chainId: BigInt(ctx.chainId),
      nonce: rec.nonce,
      to: rec.to,
      data: rec.data,
      value: BigInt(rec.value),
      gasLimit: BigInt(rec.gas_limit),
      maxFeePerGas: BigInt(rec.max_fee_per_gas),
      maxPriorityFeePerGas: BigInt(rec.max_priority_fee_per_gas),
    });
    // A signed transaction's hash is the keccak of its serialized bytes (EIP-2718 for typed ones); parsing the
    // bytes back into a Transaction to ask for it cost more than the signature.
    return { raw, hash: keccak256(raw) };
  }

  /** Whether a node already knows this exact transaction (pending in its pool or mined). */
  async function nodeHolds(slot: Slot): Promise<boolean> {
    try {
      return (await ctx.rpc.request<unknown>('eth_getTransactionByHash', [slot.hash])) !== null;
    } catch {
      return false;
    }
  }

  async function send(slot: Slot, onAnswered?: () => void): Promise<SendResult> {
    const outcomes = await ctx.rpc.broadcast('eth_sendRawTransaction', [slot.raw]);
    onAnswered?.();
    // The most telling answer wins (an outright refusal only when no endpoint said anything better, not even
    // "no answer"); with no answers at all the send is uncertain.
    let best: SendResult | undefined;
    let message = 'no endpoint answered';
    for (const o of outcomes) {
      const r: SendResult = o.ok ? 'accepted' : resultOf(classifyRpcError(o.error).cls);
      if (best === undefined || RANK[r] < RANK[best]) {
        best = r;
        message = o.ok ? 'accepted' : o.error.message;
      }
    }
    const result: SendResult = best ?? 'uncertain';
    const t = ctx.now();
    const wasUncertain = slot.uncertain;
    slot.lastSendAt = t;
    slot.uncertain = result === 'uncertain';
    const fields = { nonce: slot.rec.nonce, tx_hash: slot.hash, kind: slot.rec.kind };
    switch (result) {
      case 'accepted': {
        slot.extraBumpPct = 0;
        slot.refused = 0;
        if (slot.fundsBlocked) {
          slot.fundsBlocked = false;
          if (ctx.funds.blocked && ctx.funds.nonce === slot.rec.nonce) {
            ctx.funds.blocked = false;
            log.info('wallet can pay again: resuming', { ...fields, address: ctx.address });
            ctx.emit({ type: 'fundsRestored', nonce: slot.rec.nonce, address: ctx.address });
          }
        }
        if (slot.rec.state === 'reserved') {
          slot.rec = { ...slot.rec, state: 'sent', sent_at_ms: t, updated_at_ms: t };
          await persistLane(ctx.store, slot.rec, t);
        }
        break;
      }
      case 'nonce_too_low':
        slot.nonceTooLow += 1;
        log.debug('node says nonce too low; checking our hashes', { ...fields, count: slot.nonceTooLow });
        break;
      case 'insufficient_funds': {
        slot.fundsBlocked = true;
        if (!ctx.funds.blocked) {
          ctx.funds.blocked = true;
          ctx.funds.nonce = slot.rec.nonce;
          log.error('the wallet cannot pay for gas: new transactions are paused until it is funded', {
            ...fields,
            address: ctx.address,
            retry_ms: ctx.policy.insufficientFundsRetryMs,
            error: message,
          });
          ctx.emit({ type: 'insufficientFunds', nonce: slot.rec.nonce, address: ctx.address, message });
        }
        break;
      }
      case 'replacement_underpriced':
      case 'fee_too_low':
        // A node that already holds these very bytes may answer "underpriced" to a re-send instead of "already
        // known": that is no reason to pay more (the time/block bump rules still apply).
        if (await nodeHolds(slot)) {
          log.debug('node already holds these bytes; not bumping', { ...fields, error: message });
          break;
        }
        slot.forceBump = true;
        slot.extraBumpPct = result === 'replacement_underpriced' ? slot.extraBumpPct + 10 : slot.extraBumpPct;
        log.info('node wants higher fees: bumping', { ...fields, error: message });
        break;
      case 'uncertain':
        (wasUncertain ? log.debug : log.warn)(
          'no endpoint confirmed the send; keeping the nonce and re-sending the same bytes',
          {
            ...fields,
            error: message,
          },
        );
        break;
      case 'rejected':
        slot.refused += 1;
        slot.lastRefusal = message;
        log.error('every endpoint refused the transaction; retrying with higher fees', {
          ...fields,
          refusals: slot.refused,
          error: message,
        });
        break;
    }
    return result;
  }

  async function bump(slot: Slot, head: number, why: string): Promise<SendResult> {
    const prev = feesOf(slot.rec);
    let market: FeeSuggestion | undefined;
    try {
      market = await suggestFees();
    } catch (e) {
      log.debug('no fee suggestion for the bump; bumping from the previous fees', { error: errorText(e) });
    }
    const res = bumpFees(prev, ctx.policy, slot.capWei, market, slot.extraBumpPct);
    const t = ctx.now();
    slot.lastBumpAt = t;
    slot.lastBumpBlock = head;
    slot.forceBump = false;
    if (res.kind === 'at_cap') {
      log.warn('fees at the cap: re-sending the same transaction', {
        nonce: slot.rec.nonce,
        tx_hash: slot.hash,
        max_fee_per_gas: prev.maxFeePerGas,
        cap_wei: slot.capWei,
        why,
      });
      return await send(slot);
    }
    const next: LaneTx = {
      ...slot.rec,
      max_fee_per_gas: res.fees.maxFeePerGas.toString(),
      max_priority_fee_per_gas: res.fees.maxPriorityFeePerGas.toString(),
      attempts: slot.rec.attempts + 1,
      updated_at_ms: t,
    };
    const signed = await signRecord(next);
    next.hashes = [...slot.rec.hashes, signed.hash];
    // The new hash is on disk before any node sees it: whichever hash gets mined, a restart can find it.
    await persistLane(ctx.store, next, t, { durable: true });
    const oldHash = slot.hash;
    slot.rec = next;
    slot.raw = signed.raw;
    slot.hash = signed.hash;
    log.info('bumped fees', {
      nonce: next.nonce,
      old_tx_hash: oldHash,
      tx_hash: signed.hash,
      max_fee_per_gas: res.fees.maxFeePerGas,
      max_priority_fee_per_gas: res.fees.maxPriorityFeePerGas,
      why,
    });
    ctx.emit({
      type: 'replaced',
      ...slotRef(next),
      oldHash,
      newHash: signed.hash,
      maxFeePerGas: res.fees.maxFeePerGas,
      maxPriorityFeePerGas: res.fees.maxPriorityFeePerGas,
    });
    return await send(slot);
  }

  return { suggestFees, signRecord, send, bump };
}
