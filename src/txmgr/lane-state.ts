/**
 * The tx manager's in-memory lane: the open slots by nonce, the next nonce to reserve, whether the wallet is out
 * of funds, the waiters for room in the lane, and the outcome events to the owner. One per manager, shared by the
 * submit path, the re-sync and the confirmer's tick (all in one thread: no locking beyond `Slot.busy`).
 */
import { errorText } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import type { LaneTx } from '../store/records.ts';
import { isPending, type Slot } from './nonce-lane.ts';
import type { TxEvent } from './types.ts';

export interface LaneState {
  readonly slots: Map<number, Slot>;
  /** The nonce the next reservation gets: every nonce below it has a lane record. */
  nextNonce: number;
  /**
   * Set while a delegation (a type-4 transaction whose authorization takes the nonce after its own) is prepared or
   * pending: new submits wait as for a full lane, until it is mined and the next nonce is read from the chain again.
   */
  held: boolean;
  /** Whether the wallet is out of funds (new submits are refused while set), and for which nonce. */
  readonly funds: { blocked: boolean; nonce: number };
  /** Slots sent but not yet mined (what `maxInFlight` bounds). */
  pendingCount(): number;
  /** Resolves at the next `wake()` (a slot stopped being pending, or the manager stops). */
  changed(): Promise<void>;
  wake(): void;
  /** Hands an event to the owner; a throwing handler is logged, never breaks the lane. */
  emit(ev: TxEvent): void;
  /** A fresh in-memory slot for a signed record (not yet in `slots`). */
  newSlot(rec: LaneTx, signed: { raw: string; hash: string }, capWei: bigint): Slot;
}

export function createLaneState(o: {
  log: Logger;
  now: () => number;
  bestBlock: () => number;
  onEvent: (ev: TxEvent) => void;
}): LaneState {
  const slots = new Map<number, Slot>();
  let waiters: Array<() => void> = [];

  return {
    slots,
    nextNonce: 0,
    held: false,
    funds: { blocked: false, nonce: -1 },
    pendingCount() {
      let n = 0;
      for (const s of slots.values()) if (isPending(s.rec)) n++;
      return n;
    },
    changed: () => new Promise<void>((r) => waiters.push(r)),
    wake() {
      const w = waiters;
      waiters = [];
      for (const f of w) f();
    },
    emit(ev) {
      try {
        o.onEvent(ev);
      } catch (e) {
        o.log.error('onEvent handler threw; event dropped', { type: ev.type, error: errorText(e) });
      }
    },
    newSlot(rec, signed, capWei) {
      const t = o.now();
      return {
        rec,
        raw: signed.raw,
        hash: signed.hash,
        capWei,
        lastSendAt: 0,
        lastBumpAt: t,
        lastBumpBlock: o.bestBlock(),
        forceBump: false,
        extraBumpPct: 0,
        uncertain: false,
        nonceTooLow: 0,
        noReceiptTicks: 0,
        fundsBlocked: false,
        refused: 0,
        lastRefusal: '',
        lastPoolCheckAt: t,
        busy: false,
      };
    },
  };
}
