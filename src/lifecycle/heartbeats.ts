/**
 * The heartbeats in flight, per activity, and how long they take to land. Heartbeats are paced by inclusion, not
 * confirmation: a heartbeat tx is pending until mined, then mined with its block's time (the activity's liveness as
 * the chain sees it now) until its confirmation is committed; a reorg makes it pending again. Several mined
 * heartbeats of one id may await their confirmations at once. Entries come and go through the in-flight tracker
 * (`tracker.ts`), which follows every tx of the lane.
 */

export interface HeartbeatTracker {
  /** `ids` have the heartbeat tx `nonce` in flight, pending (not mined). */
  add(ids: readonly string[], nonce: number): void;
  /** The heartbeat tx `nonce` of `ids` is no longer in flight. */
  remove(ids: readonly string[], nonce: number): void;
  /** A heartbeat tx is in flight for `id` (pending or mined, not yet confirmed). */
  inFlight(id: string): boolean;
  /** A heartbeat tx of `id` is being submitted or sent and not mined: the next one waits for it. */
  pending(id: string): boolean;
  /** Block time (s) of the newest mined, not yet confirmed heartbeat of `id` the chain accepted. */
  lastMinedS(id: string): number | undefined;
  /** The heartbeat tx `nonce` was mined at chain time `atS` and accepted for `ids`. Unknown entries are ignored. */
  mined(ids: readonly string[], nonce: number, atS: number): void;
  /** The heartbeat tx `nonce` left its block (reorg): pending again for its ids. */
  reorged(ids: readonly string[], nonce: number): void;
  /** The heartbeat tx `nonce` was sent by a round that began at chain time `roundS` (for `leadS`). */
  sent(nonce: number, roundS: number): void;
  /**
   * How long heartbeats take from their round to their block, lately (seconds; a slow one counts at once, fast
   * ones decay it): a round sends heartbeats this much before they are due, so they LAND an interval apart even
   * when submits are slow.
   */
  leadS(): number;
  /** Drops the heartbeat entries of `id` (its activity ended; their outcome no longer matters). */
  forget(id: string): void;
  /** Heartbeat entries in flight. */
  size(): number;
}

/** Weight of a newest sample below the heartbeat lead in its decay (a sample above it is taken whole). */
const LEAD_WEIGHT = 0.3;

/** No heartbeat in flight. */
export function createHeartbeatTracker(): HeartbeatTracker {
  /** Activity id → its heartbeat txs in flight: nonce → block time once mined (undefined while pending). */
  const byId = new Map<string, Map<number, number | undefined>>();
  /** Heartbeat nonce → the chain time its round began (until it is mined). */
  const roundOf = new Map<number, number>();
  let leadS = 0;

  return {
    add(ids, nonce) {
      for (const id of ids) {
        let m = byId.get(id);
        if (!m) {
          m = new Map();
          byId.set(id, m);
        }
        m.set(nonce, undefined);
      }
    },
    remove(ids, nonce) {
      for (const id of ids) {
        const m = byId.get(id);
        if (!m) continue;
        m.delete(nonce);
        if (m.size === 0) byId.delete(id);
      }
    },
    inFlight: (id) => byId.has(id),
    pending(id) {
      for (const at of byId.get(id)?.values() ?? []) if (at === undefined) return true;
      return false;
    },
    lastMinedS(id) {
      let last: number | undefined;
      for (const at of byId.get(id)?.values() ?? [])
        if (at !== undefined && (last === undefined || at > last)) last = at;
      return last;
    },
    mined(ids, nonce, atS) {
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
        const m = byId.get(id);
        if (m?.has(nonce)) m.set(nonce, atS);
      }
    },
    reorged(ids, nonce) {
      for (const id of ids) {
        const m = byId.get(id);
        if (m?.has(nonce)) m.set(nonce, undefined);
      }
    },
    sent(nonce, roundS) {
      roundOf.set(nonce, roundS);
      // Bounded: a nonce whose heartbeat was never reported mined (confirmed at once, failed) must not pile up.
      if (roundOf.size > 1_000) roundOf.delete(roundOf.keys().next().value as number);
    },
    leadS: () => leadS,
    forget: (id) => void byId.delete(id),
    size() {
      let n = 0;
      for (const m of byId.values()) n += m.size;
      return n;
    },
  };
}
