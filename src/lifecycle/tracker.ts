/**
 * The in-flight tracker: which activities have a transaction in flight, of which kind, and which have a heartbeat
 * in flight (a separate set: a heartbeat and a claim/complete/fail/resume may be in flight for one id together).
 *
 * Its one rule: an id is in flight from BEFORE its submit (while it waits for its turn in the lane) until the tx's
 * outcome is committed to the store. Any step that reads the store in between would otherwise see the old record
 * with nothing in flight and act on it again: send a heartbeat twice in one interval, put a landed claim back in
 * the claim queue, re-send a complete. In-memory only: `restore` rebuilds it from the lane after a restart.
 *
 * Heartbeats are paced by inclusion, not confirmation: a heartbeat tx is `pending` until mined, then `mined` with
 * its block's time (the activity's liveness as the chain sees it now) until its confirmation is committed; a
 * reorg makes it pending again. Several mined heartbeats of one id may await their confirmations at once.
 */
import type { TxKind } from '../store/records.ts';

/** A submit under way: `sent` records its nonce, `abort` gives the ids back (to what they had before). */
export interface PendingSubmit {
  sent(nonce: number): void;
  abort(): void;
}

/** The outcome of one lane slot, as far as the tracker cares. */
export interface SlotOutcome {
  kind: TxKind;
  nonce: number;
  activityIds: readonly string[];
}

export interface InFlightTracker {
  /** Marks `ids` in flight for a tx of `kind` about to be submitted (nonce not known yet). */
  begin(kind: TxKind, ids: readonly string[]): PendingSubmit;
  /** Marks `ids` in flight for a lane slot that survived a restart. */
  restore(kind: TxKind, ids: readonly string[], nonce: number): void;
  /** Releases `ids` still held by the tx `nonce` of `kind` (a later tx for the same id is left alone). */
  release(kind: TxKind, ids: readonly string[], nonce: number): void;
  /**
   * Runs `commit` (which writes the slot's outcome to the store) and only then releases every id of the slot,
   * whether `commit` succeeded or threw. `commit` may release some ids earlier, once their outcome is committed.
   */
  settle<T>(slot: SlotOutcome, commit: (release: (ids: readonly string[]) => void) => Promise<T>): Promise<T>;
  /** A claim, complete, fail or resume tx is in flight for `id`. */
  has(id: string): boolean;
  /** The kind of the claim/complete/fail/resume tx of `id` in flight (being prepared or in the lane), if any. */
  kindOf(id: string): TxKind | undefined;
  /** The kind of the claim/complete/fail/resume tx of `id` that holds a nonce (in the lane), if any. */
  inLane(id: string): TxKind | undefined;
  /** A heartbeat tx is in flight for `id` (pending or mined, not yet confirmed). */
  heartbeatInFlight(id: string): boolean;
  /** A heartbeat tx of `id` is being submitted or sent and not mined: the next one waits for it. */
  heartbeatPending(id: string): boolean;
  /** Block time (s) of the newest mined, not yet confirmed heartbeat of `id` the chain accepted. */
  lastMinedHeartbeatS(id: string): number | undefined;
  /** The heartbeat tx `nonce` was mined at chain time `atS` and accepted for `ids`. Unknown entries are ignored. */
  heartbeatMined(ids: readonly string[], nonce: number, atS: number): void;
  /** The heartbeat tx `nonce` left its block (reorg): pending again for its ids. */
  heartbeatReorged(ids: readonly string[], nonce: number): void;
  /** The heartbeat tx `nonce` was sent by a round that began at chain time `roundS` (for `heartbeatLeadS`). */
  heartbeatSent(nonce: number, roundS: number): void;
  /**
   * How long heartbeats take from their round to their block, lately (seconds; a slow one counts at once, fast
   * ones decay it): a round sends heartbeats this much before they are due, so they LAND an interval apart even
   * when submits are slow.
   */
  heartbeatLeadS(): number;
  /** Drops the heartbeat entry of `id` (its activity ended; the heartbeat's outcome no longer matters). */
  forgetHeartbeat(id: string): void;
  /** Drops every entry of `id` (its activity ended). */
  forget(id: string): void;
  /** Transactions in flight, heartbeat entries included (for status). */
  size(): number;
}

/** Weight of a newest sample below the heartbeat lead in its decay (a sample above it is taken whole). */
const LEAD_WEIGHT = 0.3;

/** Nonce placeholder of a tx being submitted (waiting for its turn in the lane). */
const SUBMITTING = -1;

/** An empty tracker. */
export function createInFlightTracker(): InFlightTracker {
  /** Activity id → the claim/complete/fail/resume tx in flight for it. */
  const pending = new Map<string, { kind: TxKind; nonce: number }>();
  /** Activity id → its heartbeat txs in flight: nonce → block time once mined (undefined while pending). */
  const heartbeats = new Map<string, Map<number, number | undefined>>();
  /** Heartbeat nonce → the chain time its round began (until it is mined). */
  const roundOf = new Map<number, number>();
  let leadS = 0;

  const hbOf = (id: string) => {
    let m = heartbeats.get(id);
    if (!m) {
      m = new Map();
      heartbeats.set(id, m);
    }
    return m;
  };
  const dropHb = (id: string, nonce: number) => {
    const m = heartbeats.get(id);
    if (!m) return;
    m.delete(nonce);
    if (m.size === 0) heartbeats.delete(id);
  };
  const mark = (kind: TxKind, ids: readonly string[], nonce: number) => {
    for (const id of ids) {
      if (kind === 'heartbeat') hbOf(id).set(nonce, undefined);
      else pending.set(id, { kind, nonce });
    }
  };
  const release = (kind: TxKind, ids: readonly string[], nonce: number) => {
    for (const id of ids) {
      if (kind === 'heartbeat') dropHb(id, nonce);
      else if (pending.get(id)?.nonce === nonce) pending.delete(id);
    }
  };

  return {
    begin(kind, ids) {
      if (kind === 'heartbeat') {
        mark(kind, ids, SUBMITTING);
        return {
          sent(nonce) {
            for (const id of ids) {
              dropHb(id, SUBMITTING);
              hbOf(id).set(nonce, undefined);
            }
          },
          abort: () => release(kind, ids, SUBMITTING),
        };
      }
      const before = new Map(ids.map((id) => [id, pending.get(id)] as const));
      mark(kind, ids, SUBMITTING);
      return {
        sent: (nonce) => mark(kind, ids, nonce),
        abort() {
          for (const id of ids) {
            if (pending.get(id)?.nonce !== SUBMITTING) continue;
            const prev = before.get(id);
            if (prev === undefined) pending.delete(id);
            else pending.set(id, prev);
          }
        },
      };
    },
    restore: mark,
    release,
    async settle(slot, commit) {
      try {
        return await commit((ids) => release(slot.kind, ids, slot.nonce));
      } finally {
        release(slot.kind, slot.activityIds, slot.nonce);
      }
    },
    has: (id) => pending.has(id),
    kindOf: (id) => pending.get(id)?.kind,
    inLane(id) {
      const p = pending.get(id);
      return p && p.nonce !== SUBMITTING ? p.kind : undefined;
    },
    heartbeatInFlight: (id) => heartbeats.has(id),
    heartbeatPending(id) {
      for (const at of heartbeats.get(id)?.values() ?? []) if (at === undefined) return true;
      return false;
    },
    lastMinedHeartbeatS(id) {
      let last: number | undefined;
      for (const at of heartbeats.get(id)?.values() ?? [])
        if (at !== undefined && (last === undefined || at > last)) last = at;
      return last;
    },
    heartbeatMined(ids, nonce, atS) {
      const began = roundOf.get(nonce);
      if (began !== undefined) {
        roundOf.delete(nonce);
        // Block times are whole seconds: a sample may read a little short; never below zero. A slow sample is
        // taken at once, fast ones bring the lead down gradually: a heartbeat a little early costs nothing, a late
        // one risks the activity.
        const sample = Math.max(0, atS - began);
        leadS = Math.max(sample, LEAD_WEIGHT * sample + (1 - LEAD_WEIGHT) * leadS);
      }
      for (const id of ids) {
        const m = heartbeats.get(id);
        if (m?.has(nonce)) m.set(nonce, atS);
      }
    },
    heartbeatReorged(ids, nonce) {
      for (const id of ids) {
        const m = heartbeats.get(id);
        if (m?.has(nonce)) m.set(nonce, undefined);
      }
    },
    heartbeatSent(nonce, roundS) {
      roundOf.set(nonce, roundS);
      // Bounded: a nonce whose heartbeat was never reported mined (confirmed at once, failed) must not pile up.
      if (roundOf.size > 1_000) roundOf.delete(roundOf.keys().next().value as number);
    },
    heartbeatLeadS: () => leadS,
    forgetHeartbeat: (id) => void heartbeats.delete(id),
    forget(id) {
      pending.delete(id);
      heartbeats.delete(id);
    },
    size() {
      let n = pending.size;
      for (const m of heartbeats.values()) n += m.size;
      return n;
    },
  };
}
