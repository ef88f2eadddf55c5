/**
 * The nonce lane: one wallet, one strictly increasing sequence of nonces, each bound to exactly one meaning.
 *
 * Invariants:
 * - A nonce is written to the store (`lane:{nonce}` state `reserved` with the exact to/data/gas/fees and the
 *   signed hash, `nonce:last`, `tx:{id}` per activity) in ONE durable transaction before any byte is broadcast.
 * - Every re-signed hash is appended to `hashes` (durably) before it is broadcast; any of them may be mined.
 * - A nonce's meaning (to, data, value) never changes. A gap is filled with our transaction the node still knows
 *   at that nonce (`carried.ts`), else with a 0-value self-transfer (`noop`).
 *
 * This file holds the store side and the pure start-up plan; sending lives in `broadcaster.ts`.
 */
import { WcpError } from '../internal/errors.ts';
import { laneKey, NONCE_LAST, PREFIX, txKey } from '../store/keys.ts';
import { type LaneTx, LaneTxSchema, NonceLastSchema, type TxRef, TxRefSchema } from '../store/records.ts';
import type { Store } from '../store/store.ts';
import { authNonces } from './authorization.ts';

/** In-memory state of one open (not final) lane slot. `rec` mirrors what is persisted. */
export interface Slot {
  rec: LaneTx;
  /** Signed bytes of the newest hash (`rec.hashes` last). */
  raw: string;
  hash: string;
  capWei: bigint;
  lastSendAt: number;
  lastBumpAt: number;
  lastBumpBlock: number;
  /** Set by "replacement underpriced" / "fee too low": bump at the next tick, with `extraBumpPct` more. */
  forceBump: boolean;
  extraBumpPct: number;
  /** The last send got no answer (transport error): re-send the same bytes at the next tick. */
  uncertain: boolean;
  nonceTooLow: number;
  /** Ticks the chain nonce was past this slot but no receipt of ours was found. */
  noReceiptTicks: number;
  /** The wallet could not pay for this slot at the last send. */
  fundsBlocked: boolean;
  /** Sends every endpoint refused outright (`rejected`) since the last acceptance, and the last refusal's message. */
  refused: number;
  lastRefusal: string;
  lastPoolCheckAt: number;
  busy: boolean;
}

const OPEN_STATES: ReadonlySet<LaneTx['state']> = new Set(['reserved', 'sent', 'mined']);
export const isOpen = (r: LaneTx): boolean => OPEN_STATES.has(r.state);
export const isPending = (r: LaneTx): boolean => r.state === 'reserved' || r.state === 'sent';

export function readNonceLast(store: Store): number {
  return store.get(NONCE_LAST, NonceLastSchema)?.nonce ?? -1;
}

/** Every lane record, in nonce order (bounded by `laneHistory` pruning). */
export function loadLane(store: Store): LaneTx[] {
  return store.list(PREFIX.lane, LaneTxSchema).map((e) => e.value);
}

function refFor(rec: LaneTx, id: string, prev: TxRef | undefined, now: number): TxRef {
  return {
    activity_id: id,
    // In a batch, the kind of the call acting for this activity (its last one: a heartbeat goes before a complete).
    kind: rec.calls?.findLast((c) => c.activity_ids.includes(id))?.kind ?? rec.kind,
    nonce: rec.nonce,
    tx_hash: rec.mined_hash ?? rec.hashes[rec.hashes.length - 1] ?? '0x',
    max_fee_per_gas: rec.max_fee_per_gas,
    max_priority_fee_per_gas: rec.max_priority_fee_per_gas,
    attempts: prev && prev.nonce === rec.nonce ? Math.max(prev.attempts, rec.attempts) : rec.attempts,
    updated_at_ms: now,
  };
}

/**
 * Persists a new reservation: lane record + `nonce:last` + `tx:{id}` refs, one durable transaction. Refuses
 * (INTERNAL) if a record already holds that nonce: a nonce is never given two meanings.
 */
export async function persistReservation(store: Store, rec: LaneTx, now: number): Promise<void> {
  await persistReservations(store, [rec], now);
}

/**
 * `persistReservation` for several records in ONE durable transaction (a group of submits reserved together): all
 * of them or none. Refuses (INTERNAL) the whole group if any nonce already has a record.
 */
export async function persistReservations(store: Store, recs: readonly LaneTx[], now: number): Promise<void> {
  if (recs.length === 0) return;
  await store.transact(
    (tx) => {
      let last = tx.get(NONCE_LAST, NonceLastSchema)?.nonce ?? -1;
      for (const rec of recs) {
        if (tx.has(laneKey(rec.nonce))) {
          throw new WcpError('INTERNAL', `nonce ${rec.nonce} already has a lane record; refusing to reuse it`);
        }
        tx.put(laneKey(rec.nonce), rec);
        if (rec.nonce > last) {
          last = rec.nonce;
          tx.put(NONCE_LAST, { nonce: rec.nonce, updated_at_ms: now });
        }
        for (const id of rec.activity_ids) tx.put(txKey(id), refFor(rec, id, tx.get(txKey(id), TxRefSchema), now));
      }
    },
    { durable: true },
  );
}

/**
 * Writes an updated lane record (and refreshes the `tx:{id}` refs that still point at this nonce). `durable`
 * before broadcasting a new hash; state changes that can be re-derived from the chain need not be.
 * `pruneBelow`: also delete the final lane record at that nonce (bounded history).
 */
export async function persistLane(
  store: Store,
  rec: LaneTx,
  now: number,
  opts: { durable?: boolean; pruneNonce?: number } = {},
): Promise<void> {
  await store.transact(
    (tx) => {
      tx.put(laneKey(rec.nonce), rec);
      for (const id of rec.activity_ids) {
        const prev = tx.get(txKey(id), TxRefSchema);
        if (!prev || prev.nonce <= rec.nonce) tx.put(txKey(id), refFor(rec, id, prev, now));
      }
      if (opts.pruneNonce !== undefined && opts.pruneNonce >= 0) {
        const old = tx.get(laneKey(opts.pruneNonce), LaneTxSchema);
        if (old && !isOpen(old)) tx.del(laneKey(opts.pruneNonce));
      }
    },
    { durable: opts.durable ?? false },
  );
}

/** What `start()` must do to bring the lane in line with the chain. Pure. */
export interface ResyncPlan {
  /** Open records whose nonce the chain has passed: find which of our hashes was mined. */
  resolve: LaneTx[];
  /** Records still ahead of the chain: re-broadcast with the same meaning (fees re-bumped). */
  resend: LaneTx[];
  /**
   * Nonces in [chain pending, nonce:last] with no usable record: fill with a noop self-transfer. A nonce an open
   * delegation's authorization takes is never one of them.
   */
  fillNoop: number[];
  /** Nonces in [chain latest, chain pending) we know nothing of: someone else's tx is in the pool. */
  foreign: number[];
  /** The nonce the next reservation gets. */
  nextNonce: number;
}

export function planResync(input: {
  latest: number;
  pending: number;
  nonceLast: number;
  records: LaneTx[];
}): ResyncPlan {
  const { latest, pending, nonceLast } = input;
  const byNonce = new Map<number, LaneTx>();
  for (const r of input.records) byNonce.set(r.nonce, r);
  const plan: ResyncPlan = {
    resolve: [],
    resend: [],
    fillNoop: [],
    foreign: [],
    nextNonce: Math.max(pending, nonceLast + 1),
  };
  for (const r of input.records) {
    if (r.nonce < latest) {
      if (isOpen(r)) plan.resolve.push(r);
    } else if (r.state !== 'failed') {
      // Ahead of the chain: pending, reserved-never-sent, or (after a deep reorg) once confirmed. Same meaning.
      plan.resend.push(r);
    }
  }
  const top = Math.max(nonceLast, pending - 1);
  // The nonce after an open delegation's (one the chain has not passed) is its authorization's: never a gap to
  // fill (see authorization.ts). Once the chain passed the delegation, its counts say whether that nonce was used.
  const authorized = authNonces(input.records.filter((r) => r.nonce >= latest));
  for (let n = latest; n <= top; n++) {
    const r = byNonce.get(n);
    if ((r && r.state !== 'failed') || authorized.has(n)) continue;
    // Below the chain's pending count the pool holds some tx for n that we did not record: leave it alone.
    if (n < pending) plan.foreign.push(n);
    else plan.fillNoop.push(n);
  }
  return plan;
}
