/**
 * The in-flight tracker: which activities have a transaction in flight, of which kind; their heartbeats in flight
 * are its `heartbeats` (`heartbeats.ts`: a heartbeat and a claim/complete/fail/resume may be in flight for one id
 * together).
 *
 * Its one rule: an id is in flight from BEFORE its submit (while it waits for its turn in the lane) until the tx's
 * outcome is committed to the store. Any step that reads the store in between would otherwise see the old record
 * with nothing in flight and act on it again: send a heartbeat twice in one interval, put a landed claim back in
 * the claim queue, re-send a complete. In-memory only: `restore` rebuilds it from the lane after a restart.
 */
import { createHeartbeatTracker, type HeartbeatTracker } from './heartbeats.ts';
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
  /** The heartbeats in flight, and how long they take to land. */
  heartbeats: HeartbeatTracker;
  /** Drops every entry of `id` (its activity ended). */
  forget(id: string): void;
  /** Transactions in flight, heartbeat entries included (for status). */
  size(): number;
}

/** Nonce placeholder of a tx being submitted (waiting for its turn in the lane). */
const SUBMITTING = -1;

/** An empty tracker. */
export function createInFlightTracker(): InFlightTracker {
  /** Activity id → the claim/complete/fail/resume tx in flight for it. */
  const pending = new Map<string, { kind: TxKind; nonce: number }>();
  const heartbeats = createHeartbeatTracker();

  const mark = (kind: TxKind, ids: readonly string[], nonce: number) => {
    for (const id of ids) {
      if (kind === 'heartbeat') heartbeats.add([id], nonce);
      else pending.set(id, { kind, nonce });
    }
  };
  const release = (kind: TxKind, ids: readonly string[], nonce: number) => {
    for (const id of ids) {
      if (kind === 'heartbeat') heartbeats.remove([id], nonce);
      else if (pending.get(id)?.nonce === nonce) pending.delete(id);
    }
  };

  return {
    begin(kind, ids) {
      if (kind === 'heartbeat') {
        mark(kind, ids, SUBMITTING);
        return {
          sent(nonce) {
            heartbeats.remove(ids, SUBMITTING);
            heartbeats.add(ids, nonce);
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
    heartbeats,
    forget(id) {
      pending.delete(id);
      heartbeats.forget(id);
    },
    size: () => pending.size + heartbeats.size(),
  };
}
