/**
 * The settle decisions: a transaction's events (`TxEvent` mined / reorged / confirmed / failed) decided against
 * the records of its ids. PURE: the runner reads the records, commits the writes and runs the effects. Every id of
 * a settled tx stays in flight until its outcome is committed (`release` effects, and the tracker's own `settle`):
 * a landed claim's details are read, a landed complete sends the resume, a landed fail or resume ends the record.
 * A failed or reverted tx, or one whose receipt lacks our event, sends its ids to the chain re-check.
 *
 * Liveness acts on inclusion (`mined`), before confirmations: a mined heartbeat paces the next one from its block's
 * time, and each id it did not heartbeat (the receipt's `ActivityHeartbeat` events are read per id) is re-checked;
 * a mined claim makes the ids it won `claimed` and dispatchable at once. A `reorged` tx is pending again: its
 * heartbeat holds the next one back until it is mined again, its claim's ids are in flight again. What is recorded
 * as final (done records, resumes, repairs) still waits for `confirmed`.
 */
import type { Inflight } from '../store/records.ts';
import type { TxEvent } from '../txmgr/types.ts';
import type { ActivityEvents } from './calls.ts';
import { type Decision, type Effect, effects, endDecision, merge, NOTHING, type Write } from './effects.ts';
import { decideResume } from './finish.ts';
import { moved } from './records.ts';

/** A tx outcome the lifecycle acts on. */
export type SettledTx = Extract<TxEvent, { type: 'confirmed' | 'failed' }>;
/** The tx events a settle decision takes. */
export type SettleEvent = Extract<TxEvent, { type: 'mined' | 'reorged' | 'confirmed' | 'failed' }>;
type Mined = Extract<TxEvent, { type: 'mined' }>;
type Reorged = Extract<TxEvent, { type: 'reorged' }>;

/** What a settle decision reads besides the records and the event. */
export interface SettleFacts {
  wallet: string;
  nowMs: number;
  /** The receipt's activity events (empty for a failed tx). */
  events: ActivityEvents;
  /** Chain time of the tx's block (heartbeats pace from it, not from "now"); set when `needsBlockTime`. */
  blockTimeS?: number;
  /** Ids of the event with a claim/complete/fail/resume tx in flight (any nonce). */
  inFlight: ReadonlySet<string>;
}

const isClaim = (kind: string) => kind === 'claim' || kind === 'claim_batch';

/**
 * The one filter: whether any decider wants `ev`. Others (`submitted`, `replaced`, a complete's or resume's
 * `mined`, a reverted `mined`) wake nothing.
 */
export function wanted(ev: TxEvent): ev is SettleEvent {
  if (!('activityIds' in ev)) return false;
  switch (ev.type) {
    case 'mined':
      return ev.status === 'success' && (ev.kind === 'heartbeat' || isClaim(ev.kind));
    case 'reorged':
      return ev.kind === 'heartbeat' || isClaim(ev.kind);
    case 'confirmed':
    case 'failed':
      return true;
    default:
      return false;
  }
}

/** Whether deciding `ev` needs its block's time: a landed heartbeat that heartbeated any of its ids. */
export function needsBlockTime(ev: SettleEvent, events: ActivityEvents): boolean {
  return (
    (ev.type === 'mined' || (ev.type === 'confirmed' && ev.status === 'success')) &&
    ev.kind === 'heartbeat' &&
    ev.activityIds.some((id) => events.heartbeat.has(id))
  );
}

/** Decides one tx event (see the module header). */
export function decideSettle(ev: SettleEvent, records: ReadonlyMap<string, Inflight>, f: SettleFacts): Decision {
  switch (ev.type) {
    case 'mined':
      return decideMined(ev, records, f);
    case 'reorged':
      return decideReorged(ev, f);
    default:
      return decideOutcome(ev, records, f);
  }
}

/** Inclusion: heartbeats pace from their block; a claim's won ids become `claimed` (dispatchable) now. */
export function decideMined(ev: Mined, records: ReadonlyMap<string, Inflight>, f: SettleFacts): Decision {
  if (ev.status === 'reverted') return NOTHING; // the confirmation re-checks its ids
  const ids = ev.activityIds;
  if (ev.kind === 'heartbeat') {
    const ok = ids.filter((id) => f.events.heartbeat.has(id));
    // `heartbeatBatch` skips ids the sender does not hold without reverting: each id the receipt does not name
    // is re-checked now, not heartbeated blindly until its confirmation (or its timeout).
    const refused = ids.filter((id) => !f.events.heartbeat.has(id) && records.has(id));
    return effects(
      ...(ok.length ? [{ kind: 'heartbeatMined', ids: ok, nonce: ev.nonce, atS: f.blockTimeS ?? 0 } as const] : []),
      ...(refused.length
        ? [{ kind: 'recheck', ids: refused, why: 'heartbeat mined without accepting it' } as const]
        : []),
    );
  }
  if (!isClaim(ev.kind)) return NOTHING;
  const mine = ids.filter((id) => f.events.claimed.get(id) === f.wallet);
  if (mine.length === 0) return NOTHING;
  const writes = claimedWrites(mine, records, f.nowMs);
  const movedIds = writes.map((w) => w.record.activity_id);
  // The claim's outcome for these ids is committed: dispatch, heartbeats and finishing may act on them. Ids the
  // claim did not win stay in flight until its confirmation (their fate is the re-check's).
  const out: Effect[] = [{ kind: 'release', txKind: ev.kind, ids: mine, nonce: ev.nonce }];
  if (movedIds.length)
    out.push(
      {
        kind: 'log',
        level: 'info',
        message: 'claimed',
        fields: { activity_ids: movedIds.join(','), tx_hash: ev.hash, block: ev.blockNumber },
      },
      { kind: 'fillDetails', ids: movedIds, tolerant: true },
    );
  return { writes, effects: out };
}

/** A reorg took the tx out of its block: pending again until it is mined again. */
export function decideReorged(ev: Reorged, f: Pick<SettleFacts, 'inFlight'>): Decision {
  if (ev.kind === 'heartbeat') return effects({ kind: 'heartbeatReorged', ids: ev.activityIds, nonce: ev.nonce });
  if (!isClaim(ev.kind)) return NOTHING;
  // Ids released at inclusion are in flight again, so no re-check acts on chain state without the claim.
  const free = ev.activityIds.filter((id) => !f.inFlight.has(id));
  return free.length ? effects({ kind: 'track', txKind: ev.kind, ids: free, nonce: ev.nonce }) : NOTHING;
}

/** `claiming` → `claimed` for those of `ids` still claiming. */
function claimedWrites(
  ids: readonly string[],
  records: ReadonlyMap<string, Inflight>,
  nowMs: number,
): Array<Extract<Write, { kind: 'put' }>> {
  const out: Array<Extract<Write, { kind: 'put' }>> = [];
  for (const id of ids) {
    const next = moved(records.get(id), ['claiming'], 'claimed', nowMs);
    if (next) out.push({ kind: 'put', record: next });
  }
  return out;
}

/** A confirmed or failed tx: its outcome committed, then the next step of each id. */
export function decideOutcome(ev: SettledTx, records: ReadonlyMap<string, Inflight>, f: SettleFacts): Decision {
  const ids = ev.activityIds;
  const release = (which: string[]): Effect => ({ kind: 'release', txKind: ev.kind, ids: which, nonce: ev.nonce });
  if (ev.type === 'failed' || ev.status === 'reverted') {
    // Nothing of it is committed: the chain re-check decides, and it skips ids still in flight.
    const fields = { kind: ev.kind, nonce: ev.nonce, activity_ids: ids.join(',') };
    return effects(
      release(ids),
      ev.type === 'failed'
        ? { kind: 'log', level: 'warn', message: 'transaction failed', fields: { ...fields, error: ev.error.message } }
        : {
            kind: 'log',
            level: 'warn',
            message: 'transaction reverted',
            fields: { ...fields, reason: ev.revert?.message ?? '' },
          },
      ...(ids.length
        ? [{ kind: 'recheck', ids, why: `${ev.kind} ${ev.type === 'failed' ? 'tx failed' : 'reverted'}` } as const]
        : []),
    );
  }
  const { events } = f;
  switch (ev.kind) {
    case 'claim':
    case 'claim_batch': {
      const mine = ids.filter((id) => events.claimed.get(id) === f.wallet);
      const others = ids.filter((id) => !mine.includes(id));
      const writes = claimedWrites(mine, records, f.nowMs);
      const after = new Map(records);
      for (const w of writes) after.set(w.record.activity_id, w.record);
      // Already read when the claim was mined, unless that read failed or came before a restart.
      const lacking = mine.filter((id) => {
        const r = after.get(id);
        return r !== undefined && (r.expires_at_s === undefined || !r.activity_type);
      });
      const out: Effect[] = [];
      if (lacking.length) out.push({ kind: 'fillDetails', ids: lacking });
      if (mine.length)
        out.push({
          kind: 'log',
          level: 'debug',
          message: 'claim confirmed',
          fields: { activity_ids: mine.join(','), tx_hash: ev.hash },
        });
      out.push(release(ids));
      if (others.length) out.push({ kind: 'recheck', ids: others, why: 'not claimed by our claim tx' });
      return { writes, effects: out };
    }
    case 'heartbeat': {
      const t = f.blockTimeS ?? 0;
      const writes: Write[] = [];
      for (const id of ids) {
        const r = records.get(id);
        if (!r || !events.heartbeat.has(id)) continue;
        const last = Math.max(r.last_heartbeat_s ?? 0, Math.min(t, r.expires_at_s ?? t));
        writes.push({ kind: 'put', record: { ...r, last_heartbeat_s: last, updated_at_ms: f.nowMs } });
      }
      const refused = ids.filter((id) => !events.heartbeat.has(id) && records.has(id));
      return {
        writes,
        effects: [
          release(ids),
          ...(refused.length ? [{ kind: 'recheck', ids: refused, why: 'heartbeat not accepted' } as const] : []),
        ],
      };
    }
    case 'complete':
      return merge(
        ...ids.map((id): Decision => {
          if (!events.completed.has(id))
            return effects(release([id]), {
              kind: 'recheck',
              ids: [id],
              why: 'complete tx emitted no ActivityCompleted',
            });
          const next = moved(records.get(id), ['completing'], 'resuming', f.nowMs);
          if (!next) return effects(release([id]));
          const resume = decideResume(next, f.nowMs);
          // With nothing to resume the record ends at once (its end is the write); else it waits in `resuming`.
          const writes = resume.writes.length ? resume.writes : [{ kind: 'put' as const, record: next }];
          return { writes, effects: [release([id]), ...resume.effects] };
        }),
      );
    case 'fail':
      return merge(
        ...ids.map((id): Decision => {
          if (!events.failed.has(id))
            return effects(release([id]), { kind: 'recheck', ids: [id], why: 'fail tx emitted no ActivityFailed' });
          const r = records.get(id);
          return r ? endDecision(id, r, 'failed', f.nowMs, { reason: r.fail_reason ?? '' }) : NOTHING;
        }),
      );
    case 'resume':
      return merge(
        ...ids.map((id): Decision => {
          const r = records.get(id);
          return r?.state === 'resuming'
            ? endDecision(id, r, 'completed', f.nowMs, { result_ref: r.result_ref ?? '', resumed: true })
            : NOTHING;
        }),
      );
    default:
      return NOTHING;
  }
}
