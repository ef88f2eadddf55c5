/**
 * The confirmer: one tick every `receiptPollMs` walks the open lane slots.
 *
 * - A pending slot whose nonce the chain has passed: look up receipts for ALL its hashes (any may be mined).
 *   None of ours mined → after `nonceTooLowAbortAfter` ticks of that evidence the slot fails (someone else used
 *   the nonce) and the lane continues.
 * - A pending slot still ahead: bump when due (time or blocks, or the node asked for more), re-send the same
 *   bytes when the last send got no answer or periodically, and re-send at once if the head-of-line tx is unknown
 *   to the node (dropped from its pool).
 * - A mined slot: after `confirmations` blocks, re-check the receipt and the canonical block hash at its height.
 *   Vanished or moved → reorg: the slot is pending again and its tx is re-sent. Otherwise `confirmed`; a reverted
 *   receipt gets its reason by replaying the call at that block.
 * - Holes: a reorg deeper than `confirmations` takes back transactions that were already confirmed (and left
 *   the lane). The chain's nonce then falls below nonces no open slot holds, and every later transaction would
 *   wait behind them forever. A hole seen on two ticks in a row is handed to `refill` (re-open and re-send).
 */
import { errorText, type WireError } from '../internal/errors.ts';
import type { RpcClient } from '../chain/transport.ts';
import type { Logger } from '../internal/logger.ts';
import type { LaneTx } from '../store/records.ts';
import type { Store } from '../store/store.ts';
import type { Broadcaster } from './broadcaster.ts';
import { classifyRpcError } from './classify.ts';
import { decodeRevertData, decodeRevertError } from './decode.ts';
import { authNonces } from './authorization.ts';
import { isPending, persistLane, type Slot } from './nonce-lane.ts';
import { type DecodedRevert, slotRef, type TxEvent, type TxLog, type TxPolicy } from './types.ts';

export interface RawReceipt {
  transactionHash: string;
  blockNumber: string;
  blockHash: string;
  status?: string;
  gasUsed: string;
  /** The price actually paid per gas (EIP-1559 receipts carry it). */
  effectiveGasPrice?: string;
  logs: Array<{ address: string; topics: string[]; data: string; logIndex: string }>;
}

export interface ConfirmCtx {
  store: Store;
  rpc: RpcClient;
  policy: TxPolicy;
  log: Logger;
  now: () => number;
  address: string;
  broadcaster: Broadcaster;
  slots: Map<number, Slot>;
  emit: (ev: TxEvent) => void;
  /** A slot left the lane (confirmed or failed): free its place. */
  onFinal: (slot: Slot) => void;
  /** A slot stopped being pending (mined): wake submits waiting for room. */
  onRoom: () => void;
  /** The chain used one of our nonces for something else: move the next nonce past the chain's pending count. */
  onForeignNonce: (nonce: number) => Promise<void>;
  /** The nonce the next reservation gets: every nonce below it has a lane record. */
  nextNonce: () => number;
  /** Nonces in [chain nonce, nextNonce) that no open slot holds (taken back by a reorg): re-open them. */
  refill: (holes: number[], head: number) => Promise<void>;
}

const hex = (n: number): string => `0x${n.toString(16)}`;

const logsOf = (r: RawReceipt): TxLog[] =>
  r.logs.map((l) => ({ address: l.address, topics: l.topics, data: l.data, logIndex: Number(BigInt(l.logIndex)) }));

/** The receipt of whichever of `hashes` is mined, newest hash first; null if none. */
export async function findReceipt(rpc: RpcClient, hashes: readonly string[]): Promise<RawReceipt | null> {
  const got = await Promise.all(
    [...hashes].reverse().map((h) => rpc.request<RawReceipt | null>('eth_getTransactionReceipt', [h])),
  );
  return got.find((r) => r?.blockHash) ?? null;
}

/** Replays a reverted tx's call at its block (then the block before) to get the revert data. */
export async function revertReason(
  rpc: RpcClient,
  from: string,
  rec: LaneTx,
  blockNumber: number,
): Promise<DecodedRevert> {
  const call = { from, to: rec.to, data: rec.data, gas: hex(Number(rec.gas_limit)), value: hex(Number(rec.value)) };
  for (const tag of [blockNumber, blockNumber - 1]) {
    if (tag < 0) continue;
    try {
      await rpc.request<string>('eth_call', [call, hex(tag)]);
    } catch (e) {
      if (classifyRpcError(e).cls === 'reverted') return decodeRevertError(e);
    }
  }
  return decodeRevertData(
    undefined,
    'reverted (the replayed call did not revert: reason unavailable; out of gas or state-dependent)',
  );
}

/** The confirmer's tick: one pass over the open slots (see the file comment). */
export function createConfirmer(ctx: ConfirmCtx): { tick(): Promise<void> } {
  const { rpc, policy, log } = ctx;
  const ref = slotRef;

  async function markMined(s: Slot, r: RawReceipt) {
    const t = ctx.now();
    const wasPending = isPending(s.rec);
    s.rec = {
      ...s.rec,
      state: 'mined',
      mined_hash: r.transactionHash,
      block_number: Number(BigInt(r.blockNumber)),
      block_hash: r.blockHash,
      receipt_status: r.status === undefined ? 1 : Number(BigInt(r.status)),
      gas_used: BigInt(r.gasUsed).toString(),
      updated_at_ms: t,
    };
    s.noReceiptTicks = 0;
    s.nonceTooLow = 0;
    await persistLane(ctx.store, s.rec, t);
    log.debug('mined', { nonce: s.rec.nonce, tx_hash: r.transactionHash, block: s.rec.block_number });
    ctx.emit({
      type: 'mined',
      ...ref(s.rec),
      hash: r.transactionHash,
      blockNumber: s.rec.block_number as number,
      blockHash: r.blockHash,
      status: s.rec.receipt_status === 0 ? 'reverted' : 'success',
      logs: logsOf(r),
    });
    if (wasPending) ctx.onRoom();
  }

  async function fail(s: Slot, error: WireError) {
    const t = ctx.now();
    s.rec = { ...s.rec, state: 'failed', error: error.message, updated_at_ms: t };
    await persistLane(ctx.store, s.rec, t, { durable: true });
    log.error('transaction failed', {
      nonce: s.rec.nonce,
      kind: s.rec.kind,
      activity_ids: s.rec.activity_ids,
      error: error.message,
    });
    ctx.emit({ type: 'failed', ...ref(s.rec), error });
    ctx.onFinal(s);
  }

  async function reorged(s: Slot, head: number) {
    const t = ctx.now();
    const { mined_hash, block_number } = s.rec;
    const { mined_hash: _h, block_number: _b, block_hash: _bh, receipt_status: _rs, gas_used: _g, ...rest } = s.rec;
    s.rec = { ...rest, state: 'sent', updated_at_ms: t };
    // Pending again from now: the bump clock restarts (it was mined at these fees once).
    s.lastBumpAt = t;
    s.lastBumpBlock = head;
    await persistLane(ctx.store, s.rec, t, { durable: true });
    log.warn('receipt vanished (reorg): the transaction is pending again; re-sending', {
      nonce: s.rec.nonce,
      tx_hash: mined_hash,
      block: block_number,
    });
    ctx.emit({ type: 'reorged', ...ref(s.rec), hash: mined_hash ?? s.hash, blockNumber: block_number ?? -1 });
    await ctx.broadcaster.send(s);
  }

  async function checkConfirmations(s: Slot, head: number) {
    const bn = s.rec.block_number as number;
    if (head < 0 || head - bn + 1 < policy.confirmations) return;
    let r = await rpc.request<RawReceipt | null>('eth_getTransactionReceipt', [s.rec.mined_hash]);
    if (!r) r = await findReceipt(rpc, s.rec.hashes);
    if (!r) return await reorged(s, head);
    if (r.blockHash !== s.rec.block_hash || r.transactionHash !== s.rec.mined_hash) {
      // Re-included elsewhere: count confirmations from the new block.
      return await markMined(s, r);
    }
    const blk = await rpc.request<{ hash: string } | null>('eth_getBlockByNumber', [hex(bn), false]);
    if (!blk) return; // the node is behind its own receipt index; look again next tick
    if (blk.hash !== r.blockHash) return await reorged(s, head);
    const status = s.rec.receipt_status === 0 ? 'reverted' : 'success';
    let revert: DecodedRevert | undefined;
    if (status === 'reverted') revert = await revertReason(rpc, ctx.address, s.rec, bn);
    const t = ctx.now();
    s.rec = { ...s.rec, state: 'confirmed', updated_at_ms: t, ...(revert ? { error: revert.message } : {}) };
    await persistLane(ctx.store, s.rec, t, { pruneNonce: s.rec.nonce - policy.laneHistory });
    const logs = logsOf(r);
    const fields = { nonce: s.rec.nonce, kind: s.rec.kind, tx_hash: r.transactionHash, block: bn, status };
    if (revert)
      log.warn('transaction confirmed but reverted', {
        ...fields,
        revert: revert.message,
        gas_used: BigInt(r.gasUsed).toString(),
        gas_limit: s.rec.gas_limit,
      });
    else log.debug('transaction confirmed', fields);
    ctx.emit({
      type: 'confirmed',
      ...ref(s.rec),
      hash: r.transactionHash,
      blockNumber: bn,
      blockHash: r.blockHash,
      status,
      gasUsed: BigInt(r.gasUsed),
      ...(r.effectiveGasPrice ? { effectiveGasPrice: BigInt(r.effectiveGasPrice) } : {}),
      ...(revert ? { revert } : {}),
      logs,
    });
    ctx.onFinal(s);
  }

  async function maintain(s: Slot, head: number, latest: number) {
    const t = ctx.now();
    if (s.fundsBlocked) {
      if (t - s.lastSendAt >= policy.insufficientFundsRetryMs) await ctx.broadcaster.send(s);
      return;
    }
    const dueTime = t - s.lastBumpAt >= policy.bumpAfterMs;
    const dueBlocks =
      policy.bumpAfterBlocks > 0 &&
      head >= 0 &&
      s.lastBumpBlock >= 0 &&
      head - s.lastBumpBlock >= policy.bumpAfterBlocks;
    if (s.forceBump || dueTime || dueBlocks) {
      const why = s.forceBump
        ? 'node asked for higher fees'
        : dueTime
          ? `not mined within ${policy.bumpAfterMs} ms`
          : `not mined within ${policy.bumpAfterBlocks} blocks`;
      await ctx.broadcaster.bump(s, head, why);
      return;
    }
    // An unanswered send is retried sooner than the periodic re-broadcast, but not every tick.
    const resendAfter = s.uncertain ? Math.min(1_000, policy.rebroadcastMs) : policy.rebroadcastMs;
    if (t - s.lastSendAt >= resendAfter) {
      await ctx.broadcaster.send(s);
      return;
    }
    // Head of line: if the node does not know our tx (dropped from its pool) the whole lane waits on it.
    if (s.rec.nonce === latest && t - s.lastPoolCheckAt >= Math.max(1000, policy.receiptPollMs)) {
      s.lastPoolCheckAt = t;
      const known = await rpc.request<unknown>('eth_getTransactionByHash', [s.hash]);
      if (known === null) {
        log.info('head-of-line transaction unknown to the node: re-sending', { nonce: s.rec.nonce, tx_hash: s.hash });
        await ctx.broadcaster.send(s);
      }
    }
  }

  async function checkSlot(s: Slot, head: number, latest: number) {
    if (isPending(s.rec)) {
      if (s.rec.nonce < latest || s.nonceTooLow > 0) {
        const r = await findReceipt(rpc, s.rec.hashes);
        if (r) {
          await markMined(s, r);
        } else if (s.rec.nonce < latest) {
          s.noReceiptTicks += 1;
          if (Math.max(s.noReceiptTicks, s.nonceTooLow) >= policy.nonceTooLowAbortAfter) {
            await fail(s, {
              code: 'TX_NONCE_TOO_LOW',
              message: `nonce ${s.rec.nonce} was used on chain by a transaction wcp did not send (none of our ${s.rec.hashes.length} hash(es) was mined); the lane continues without it`,
              retryable: true,
            });
            await ctx.onForeignNonce(s.rec.nonce);
          }
          return;
        } else if (s.nonceTooLow >= policy.nonceTooLowAbortAfter) {
          // A node says "nonce too low" but the chain we read says otherwise: that node lags. Keep going.
          log.warn('an endpoint keeps saying nonce too low but the chain has not used the nonce', {
            nonce: s.rec.nonce,
          });
          s.nonceTooLow = 0;
        }
      }
      if (s.rec.state === 'reserved' && s.refused >= policy.refusedAbortAfter) {
        // No node ever took it, and every one refuses it for a reason fees do not change: give the nonce up (the
        // hole watch fills it with a noop, the lifecycle re-checks the ids) rather than stall the lane behind it.
        await fail(s, {
          code: 'TX_REFUSED',
          message: `every endpoint refused nonce ${s.rec.nonce} ${s.refused} times and no node ever accepted it (last: ${s.lastRefusal}); given up, the nonce is filled with a noop`,
          retryable: true,
        });
        return;
      }
      if (isPending(s.rec)) await maintain(s, head, latest);
    }
    if (s.rec.state === 'mined') await checkConfirmations(s, head);
  }

  let holeTicks = 0;
  let holesCheckedAt = -1;

  /** Nonces below `nextNonce` that the chain does not count and no open slot will send. */
  async function watchHoles(head: number, latest: number) {
    holesCheckedAt = head;
    const holes: number[] = [];
    // An open delegation's authorization takes the nonce after its own: not a hole while it is in the lane.
    const authorized = authNonces([...ctx.slots.values()].map((s) => s.rec));
    for (let n = latest; n < ctx.nextNonce(); n++) if (!ctx.slots.has(n) && !authorized.has(n)) holes.push(n);
    if (holes.length === 0) {
      holeTicks = 0;
      return;
    }
    // One read may come from a node a block behind (a slot just confirmed looks like a hole): wait for a second.
    holeTicks += 1;
    if (holeTicks < 2) return;
    holeTicks = 0;
    await ctx.refill(holes, head);
  }

  async function tick() {
    const head = await rpc.refreshHeads();
    const open = [...ctx.slots.values()].filter((s) => !s.busy);
    // An idle lane reads the chain's nonce again only when a block came (a reorg brings new blocks).
    if (open.length === 0 && head === holesCheckedAt && holeTicks === 0) return;
    const latest = Number(BigInt(await rpc.request<string>('eth_getTransactionCount', [ctx.address, 'latest'])));
    await Promise.all(
      open.map(async (s) => {
        s.busy = true;
        try {
          await checkSlot(s, head, latest);
        } catch (e) {
          log.warn('lane slot check failed; retrying next tick', { nonce: s.rec.nonce, error: errorText(e) });
        } finally {
          s.busy = false;
        }
      }),
    );
    await watchHoles(head, latest);
  }

  return { tick };
}
