/**
 * Creating lane records and putting them on the wire: a new record at its initial fees, signed (its first hash
 * recorded) but not yet persisted; a noop self-transfer for a nonce no record can fill; and one guarded send of
 * a slot (a send that throws leaves the slot `uncertain`, so the tick re-sends the same bytes).
 */
import { errorText } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import { laneKey } from '../store/keys.ts';
import type { LaneTx } from '../store/records.ts';
import type { Store } from '../store/store.ts';
import type { Broadcaster } from './broadcaster.ts';
import { type FeeSuggestion, type Fees, initialFees } from './fees.ts';
import type { LaneState } from './lane-state.ts';
import { persistLane, persistReservation, type Slot } from './nonce-lane.ts';
import type { TxPolicy } from './types.ts';

/** Gas of a 0-value self-transfer. */
const NOOP_GAS = 21_000n;

export interface RecordCtx {
  store: Store;
  policy: TxPolicy;
  log: Logger;
  address: string;
  broadcaster: Broadcaster;
  lane: LaneState;
}

export interface Recorder {
  /** A new lane record at its initial fees, signed (its first hash recorded), not yet persisted. */
  newRecord(
    f: Pick<LaneTx, 'nonce' | 'kind' | 'activity_ids' | 'to' | 'data' | 'calls' | 'authorization_list'> & {
      gas_limit: bigint;
    },
    suggestion: FeeSuggestion,
    t: number,
  ): Promise<{ rec: LaneTx; signed: { raw: string; hash: string }; capWei: bigint; fees: Fees }>;
  /** Fills nonce `n` with a 0-value self-transfer, persisted before it is sent; the slot is added to the lane. */
  noopSlot(n: number, t: number, suggestion: FeeSuggestion): Promise<Slot>;
  /**
   * Sends (or bumps, when `bumpWhy` is given) a slot; a failure is logged with `onFail` and left to the tick.
   * `onAnswered`: see `Broadcaster.send` (a plain send only).
   */
  sendGuarded(slot: Slot, head: number, onFail: string, bumpWhy?: string, onAnswered?: () => void): Promise<void>;
}

export function createRecorder(ctx: RecordCtx): Recorder {
  const { store, policy, log, broadcaster, lane } = ctx;

  const newRecord: Recorder['newRecord'] = async (f, suggestion, t) => {
    const { fees, capWei } = initialFees(suggestion, policy);
    const rec: LaneTx = {
      ...f,
      value: '0',
      gas_limit: f.gas_limit.toString(),
      max_fee_per_gas: fees.maxFeePerGas.toString(),
      max_priority_fee_per_gas: fees.maxPriorityFeePerGas.toString(),
      fee_cap_wei: capWei.toString(),
      hashes: [],
      attempts: 1,
      state: 'reserved',
      created_at_ms: t,
      updated_at_ms: t,
    };
    const signed = await broadcaster.signRecord(rec);
    rec.hashes = [signed.hash];
    return { rec, signed, capWei, fees };
  };

  async function noopSlot(n: number, t: number, suggestion: FeeSuggestion): Promise<Slot> {
    const { rec, signed, capWei } = await newRecord(
      { nonce: n, kind: 'noop', activity_ids: [], to: ctx.address, data: '0x', gas_limit: NOOP_GAS },
      suggestion,
      t,
    );
    if (store.has(laneKey(n))) await persistLane(store, rec, t, { durable: true });
    else await persistReservation(store, rec, t);
    log.warn('filling a nonce gap with a noop self-transfer', { nonce: n, tx_hash: signed.hash });
    const slot = lane.newSlot(rec, signed, capWei);
    lane.slots.set(n, slot);
    return slot;
  }

  async function sendGuarded(
    slot: Slot,
    head: number,
    onFail: string,
    bumpWhy?: string,
    onAnswered?: () => void,
  ): Promise<void> {
    slot.busy = true;
    try {
      if (bumpWhy !== undefined) await broadcaster.bump(slot, head, bumpWhy);
      else await broadcaster.send(slot, onAnswered);
    } catch (e) {
      slot.uncertain = true;
      log.warn(onFail, { nonce: slot.rec.nonce, error: errorText(e) });
    } finally {
      slot.busy = false;
    }
  }

  return { newRecord, noopSlot, sendGuarded };
}
