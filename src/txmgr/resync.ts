/**
 * Bringing the lane in line with the chain: at start-up (`resync`, from the plan of `nonce-lane.ts`
 * `planResync`), after a reorg deeper than `confirmations` took back confirmed transactions (`refill`), and when
 * another sender used one of our nonces (`syncNextNonce`). A nonce no usable record holds is filled with what the
 * node still knows we sent there (`carried.ts`), and only failing that with a noop.
 */
import type { RpcClient } from '../chain/transport.ts';
import { errorText } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import { laneKey } from '../store/keys.ts';
import { type LaneTx, LaneTxSchema } from '../store/records.ts';
import type { Store } from '../store/store.ts';
import type { Broadcaster } from './broadcaster.ts';
import { findCarried } from './carried.ts';
import { findReceipt } from './confirmer.ts';
import type { FeeSuggestion } from './fees.ts';
import { initialFees } from './fees.ts';
import type { LaneState } from './lane-state.ts';
import { loadLane, persistLane, persistReservation, planResync, readNonceLast, type Slot } from './nonce-lane.ts';
import type { Recorder } from './record.ts';
import { slotRef, type TxPolicy } from './types.ts';

export interface ResyncCtx {
  store: Store;
  rpc: RpcClient;
  policy: TxPolicy;
  log: Logger;
  now: () => number;
  address: string;
  broadcaster: Broadcaster;
  recorder: Recorder;
  /** Another sender used our nonces (from `nonce` on). */
  onForeign?: (nonce: number, detail: string) => void;
  /** A delegation record still open after a restart (re-sent like the others): the lane waits for it. */
  onOpenDelegation?: (rec: LaneTx) => void;
  lane: LaneState;
}

export interface Resync {
  /** Brings the lane in line with the chain after a (re)start; sets the next nonce. */
  resync(): Promise<void>;
  /** Re-opens nonces the chain took back (see the confirmer's hole watch) and re-sends them. */
  refill(holes: number[], head: number): Promise<void>;
  /**
   * The chain used one of our nonces for something else: move the next nonce past the chain's pending count.
   * False when the pending count could not be read (the lane is not known to be in line).
   */
  syncNextNonce(): Promise<boolean>;
}

/** A lane record without its mined-receipt fields: pending again. */
function reopened(rec: LaneTx, t: number): LaneTx {
  const {
    mined_hash: _m,
    block_number: _b,
    block_hash: _bh,
    receipt_status: _rs,
    gas_used: _g,
    error: _e,
    ...rest
  } = rec;
  return { ...rest, state: 'sent', updated_at_ms: t };
}

export function createResync(ctx: ResyncCtx): Resync {
  const { store, rpc, policy, log, address, broadcaster, recorder, lane } = ctx;
  const txCount = async (tag: 'latest' | 'pending') =>
    Number(BigInt(await rpc.request<string>('eth_getTransactionCount', [address, tag])));

  async function syncNextNonce() {
    try {
      const pending = await txCount('pending');
      if (pending > lane.nextNonce) {
        log.warn('the chain is ahead of the lane: skipping nonces someone else used', {
          from: lane.nextNonce,
          to: pending,
        });
        ctx.onForeign?.(
          lane.nextNonce,
          `nonces ${lane.nextNonce}..${pending - 1} were used by transactions wcp did not send`,
        );
        lane.nextNonce = pending;
      }
      return true;
    } catch (e) {
      log.warn('could not read the pending nonce', { error: errorText(e) });
      return false;
    }
  }

  /**
   * A reorg deeper than `confirmations` removed transactions that were already confirmed and out of the lane.
   * Each record whose hashes are all gone from the chain is pending again and re-sent with the same bytes (a
   * nonce's meaning never changes; its activity ids get a `reorged` event and, once it is mined again, a new
   * `confirmed` one). A nonce whose record had failed (another sender's tx, gone too) or is missing is treated as
   * at start-up: left alone while the node's pool holds some tx for it (below its pending count), else filled
   * (`fillGaps`): with our transaction the node still knows at that nonce, or a noop.
   */
  async function refill(holes: number[], head: number): Promise<void> {
    const t = ctx.now();
    const toSend: Slot[] = [];
    let pending: number | undefined;
    const gaps: number[] = [];
    for (const n of holes) {
      if (lane.slots.has(n)) continue;
      const rec = store.get(laneKey(n), LaneTxSchema);
      if (!rec || rec.state === 'failed') {
        pending ??= await txCount('pending');
        if (n >= pending) gaps.push(n);
        continue;
      }
      // Still mined after all (the nonce we read came from a lagging node): nothing to do.
      if (await findReceipt(rpc, rec.hashes)) continue;
      const open = reopened(rec, t);
      await persistLane(store, open, t, { durable: true });
      const slot = lane.newSlot(
        open,
        await broadcaster.signRecord(open),
        BigInt(open.fee_cap_wei ?? open.max_fee_per_gas),
      );
      lane.slots.set(n, slot);
      log.warn(
        'a confirmed transaction is no longer on chain (reorg deeper than the confirmations): pending again; re-sending it',
        {
          nonce: n,
          kind: rec.kind,
          ...(rec.calls ? { calls: rec.calls.map((c) => c.kind).join(',') } : {}),
          activity_ids: rec.activity_ids,
          tx_hash: rec.mined_hash,
          block: rec.block_number,
        },
      );
      lane.emit({
        type: 'reorged',
        ...slotRef(rec),
        hash: rec.mined_hash ?? slot.hash,
        blockNumber: rec.block_number ?? -1,
      });
      toSend.push(slot);
    }
    if (gaps.length > 0) {
      let suggestion: FeeSuggestion | undefined;
      toSend.push(...(await fillGaps(gaps, t, async () => (suggestion ??= await broadcaster.suggestFees()))));
      toSend.sort((a, b) => a.rec.nonce - b.rec.nonce);
    }
    for (const slot of toSend) await recorder.sendGuarded(slot, head, 're-send after a reorg failed; the tick retries');
  }

  /**
   * Slots for nonces no usable lane record holds: what the node still knows we sent at a nonce (`carried.ts`) is
   * adopted and re-sent with the same bytes; only a nonce nothing is found for is filled with a noop.
   */
  async function fillGaps(gaps: number[], t: number, fees: () => Promise<FeeSuggestion>): Promise<Slot[]> {
    const free = gaps.filter((n) => !store.has(laneKey(n)));
    let found: Awaited<ReturnType<typeof findCarried>> = new Map();
    try {
      found = await findCarried({ rpc, store, address, now: ctx.now }, free, broadcaster.signRecord);
    } catch (e) {
      log.warn('could not look for what a nonce gap carried; filling it with noops', { error: errorText(e) });
    }
    const out: Slot[] = [];
    for (const n of gaps) {
      const hit = found.get(n);
      if (!hit) {
        out.push(await recorder.noopSlot(n, t, await fees()));
        continue;
      }
      // Bumps may go past the found fees: the cap is at least what a new record of ours would get now.
      const cap = initialFees(await fees(), policy).capWei;
      const capWei = cap > BigInt(hit.rec.max_fee_per_gas) ? cap : BigInt(hit.rec.max_fee_per_gas);
      const rec: LaneTx = { ...hit.rec, fee_cap_wei: capWei.toString() };
      await persistReservation(store, rec, t);
      log.warn('a nonce gap holds a transaction of ours the node still knows: re-sending its bytes, not a noop', {
        nonce: n,
        kind: rec.kind,
        activity_ids: rec.activity_ids,
        tx_hash: hit.signed.hash,
      });
      const slot = lane.newSlot(rec, hit.signed, capWei);
      lane.slots.set(n, slot);
      out.push(slot);
    }
    return out;
  }

  async function resync() {
    const [latest, pending] = await Promise.all([txCount('latest'), txCount('pending')]);
    const records = loadLane(store);
    const nonceLast = readNonceLast(store);
    const plan = planResync({ latest, pending, nonceLast, records });
    log.info('lane re-sync', {
      chain_latest: latest,
      chain_pending: pending,
      nonce_last: nonceLast,
      to_resolve: plan.resolve.length,
      to_resend: plan.resend.length,
      noop_fills: plan.fillNoop.length,
      next_nonce: plan.nextNonce,
    });
    const t = ctx.now();
    let suggestion: FeeSuggestion | undefined;
    const fees = async () => (suggestion ??= await broadcaster.suggestFees());

    for (const rec of plan.resolve) {
      // The chain has passed these nonces. The first tick looks up receipts for all their hashes: one of ours
      // mined → confirm it (a 'mined' record is re-verified); none → the slot fails at once (someone else's tx).
      const signed = await broadcaster.signRecord(rec);
      const open: LaneTx = rec.state === 'mined' ? rec : { ...rec, state: 'sent' };
      const slot = lane.newSlot(open, signed, BigInt(rec.fee_cap_wei ?? rec.max_fee_per_gas));
      if (rec.state !== 'mined') slot.noReceiptTicks = policy.nonceTooLowAbortAfter - 1;
      lane.slots.set(rec.nonce, slot);
    }
    for (const n of plan.foreign)
      log.warn('a transaction we did not record holds this nonce in the pool; leaving it', { nonce: n });

    const toSend: Slot[] = [];
    for (const rec0 of plan.resend) {
      const rec: LaneTx =
        rec0.state === 'reserved'
          ? rec0
          : { ...reopened(rec0, t), ...(rec0.error === undefined ? {} : { error: rec0.error }) };
      const capWei = rec.fee_cap_wei ? BigInt(rec.fee_cap_wei) : initialFees(await fees(), policy).capWei;
      const slot = lane.newSlot(rec, await broadcaster.signRecord(rec), capWei);
      // The hash we just re-derived is the last one recorded (signing is deterministic).
      slot.forceBump = true;
      lane.slots.set(rec.nonce, slot);
      toSend.push(slot);
    }
    toSend.push(...(await fillGaps(plan.fillNoop, t, fees)));
    toSend.sort((a, b) => a.rec.nonce - b.rec.nonce);
    const head = rpc.bestBlock();
    for (const slot of toSend) {
      await recorder.sendGuarded(
        slot,
        head,
        're-send after restart failed; the tick retries',
        slot.forceBump ? 're-sync after restart' : undefined,
      );
    }
    lane.nextNonce = plan.nextNonce;
    for (const slot of toSend) if (slot.rec.authorization_list) ctx.onOpenDelegation?.(slot.rec);
  }

  return { resync, refill, syncNextNonce };
}
