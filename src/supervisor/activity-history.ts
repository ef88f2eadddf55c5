/**
 * The operator's page's list of recent activities: the `RECENT_ACTIVITIES` most recently changed ones, each with its
 * type, state, dispatch attempts, executor, transaction hashes and the time spent in each state. It follows the
 * store's commits (`Store.onCommit`) of `inflight:`, `tx:` and `done:` records, so every state an activity passes
 * through is seen when it is committed; at start it is seeded from what the store holds and the last ended ones
 * (their earlier states are not known then: the current one starts at the record's last update). In memory only,
 * bounded.
 */
import * as v from 'valibot';
import { idFromKey, PREFIX } from '../store/keys.ts';
import { DoneSchema, InflightSchema, TxRefSchema } from '../store/records.ts';
import type { Store } from '../store/store.ts';

export const RECENT_ACTIVITIES = 50;
/** Transaction hashes kept per activity (a bumped tx adds one per fee raise). */
const MAX_HASHES = 8;

export interface RecentActivity {
  id: string;
  type: string | null;
  /** The lifecycle state, or `done:{outcome}` once it ended. */
  state: string;
  attempts: number;
  executor: string | null;
  input_ref: string | null;
  /** Why it failed or ended without completing (the executor's or the chain's words). */
  reason: string | null;
  result_ref: string | null;
  txs: Array<{ kind: string; hash: string }>;
  /** Each state seen, oldest first, with how long it lasted (the last one: so far). */
  states: Array<{ state: string; since_ms: number; for_s: number }>;
  updated_ms: number;
}

interface Entry {
  id: string;
  type?: string;
  input_ref?: string;
  attempts: number;
  reason?: string;
  result_ref?: string;
  txs: Array<{ kind: string; hash: string }>;
  states: Array<{ state: string; since_ms: number }>;
  updated_ms: number;
}

export interface ActivityHistory {
  list(): RecentActivity[];
  stop(): void;
}

function decode<T>(raw: Buffer, schema: v.GenericSchema<unknown, T>): T | undefined {
  try {
    const r = v.safeParse(schema, JSON.parse(raw.toString('utf8')));
    return r.success ? r.output : undefined;
  } catch {
    return undefined;
  }
}

/** The history over `store`; `executor` names the executor dispatched work goes to. */
export function createActivityHistory(deps: { store: Store; executor: string; now?: () => number }): ActivityHistory {
  const { store } = deps;
  const now = deps.now ?? Date.now;
  const entries = new Map<string, Entry>();

  /** The entry of `id`, moved to the newest end (created when absent; the oldest is dropped past the bound). */
  function touch(id: string, at: number): Entry {
    const e = entries.get(id) ?? { id, attempts: 0, txs: [], states: [], updated_ms: at };
    entries.delete(id);
    entries.set(id, e);
    e.updated_ms = at;
    if (entries.size > RECENT_ACTIVITIES) entries.delete(entries.keys().next().value as string);
    return e;
  }
  function enter(e: Entry, state: string, at: number) {
    if (e.states.at(-1)?.state !== state) e.states.push({ state, since_ms: at });
    if (e.states.length > 12) e.states.splice(0, e.states.length - 12);
  }

  // Seed: the most recently ended (of the highest ids: a day of done records is too many to read at every start),
  // then what is held (newest last).
  const done = store
    .scan(PREFIX.done, { limit: RECENT_ACTIVITIES, reverse: true })
    .flatMap((e) => {
      const r = v.safeParse(DoneSchema, e.value);
      return r.success ? [r.output] : [];
    })
    .sort((a, b) => a.finished_at_ms - b.finished_at_ms);
  for (const d of done) {
    const e = touch(d.activity_id, d.finished_at_ms);
    if (d.activity_type) e.type = d.activity_type;
    if (d.reason) e.reason = d.reason;
    if (d.result_ref) e.result_ref = d.result_ref;
    enter(e, `done:${d.outcome}`, d.finished_at_ms);
  }
  const held = store
    .list(PREFIX.inflight, InflightSchema)
    .map((r) => r.value)
    .sort((a, b) => a.updated_at_ms - b.updated_at_ms);
  for (const r of held) {
    const e = touch(r.activity_id, r.updated_at_ms);
    Object.assign(e, { attempts: r.dispatch_attempts });
    if (r.activity_type) e.type = r.activity_type;
    if (r.input_ref) e.input_ref = r.input_ref;
    enter(e, r.state, r.updated_at_ms);
  }

  const unsubscribe = store.onCommit((writes) => {
    const t = now();
    for (const [key, raw] of writes) {
      if (raw === null) continue;
      if (key.startsWith(PREFIX.inflight)) {
        const r = decode(raw, InflightSchema);
        if (!r) continue;
        const e = touch(r.activity_id, t);
        e.attempts = r.dispatch_attempts;
        if (r.activity_type) e.type = r.activity_type;
        if (r.input_ref) e.input_ref = r.input_ref;
        if (r.fail_reason) e.reason = r.fail_reason;
        if (r.result_ref) e.result_ref = r.result_ref;
        enter(e, r.state, t);
      } else if (key.startsWith(PREFIX.done)) {
        const d = decode(raw, DoneSchema);
        if (!d) continue;
        const e = touch(d.activity_id, t);
        if (d.activity_type) e.type = d.activity_type;
        if (d.reason) e.reason = d.reason;
        if (d.result_ref) e.result_ref = d.result_ref;
        enter(e, `done:${d.outcome}`, t);
      } else if (key.startsWith(PREFIX.tx)) {
        const x = decode(raw, TxRefSchema);
        if (!x?.tx_hash) continue;
        const e = entries.get(idFromKey(key)) ?? touch(x.activity_id, t);
        if (!e.txs.some((h) => h.hash === x.tx_hash)) e.txs.push({ kind: x.kind, hash: x.tx_hash });
        if (e.txs.length > MAX_HASHES) e.txs.splice(0, e.txs.length - MAX_HASHES);
      }
    }
  });

  return {
    list() {
      const t = now();
      return [...entries.values()].reverse().map((e) => ({
        id: e.id,
        type: e.type ?? null,
        state: e.states.at(-1)?.state ?? 'unknown',
        attempts: e.attempts,
        executor: e.attempts > 0 ? deps.executor : null,
        input_ref: e.input_ref ?? null,
        reason: e.reason ?? null,
        result_ref: e.result_ref ?? null,
        txs: e.txs.slice(),
        states: e.states.map((s, i) => ({
          state: s.state,
          since_ms: s.since_ms,
          for_s: Math.max(0, Math.round(((e.states[i + 1]?.since_ms ?? t) - s.since_ms) / 100) / 10),
        })),
        updated_ms: e.updated_ms,
      }));
    },
    stop: unsubscribe,
  };
}
