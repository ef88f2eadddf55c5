/**
 * What the lifecycle knows of the executor link: whether it is ready (connected and handshaken), the activity types
 * it serves, whether the storage service answers, and which activities the executor holds (its last Resync:
 * running, or finished with a Completion not yet acknowledged). In memory only: a wcp restart learns it again from
 * the bridge's first `state` / `resync` / `storage` events.
 */
import type { ExecutorEvent, StorageRefusalReason } from '../executor/messages.ts';

type StateEvent = Extract<ExecutorEvent, { type: 'state' }>;

/** The storage service as the lifecycle knows it: `pending` until the bridge's first answer (when it has a broker). */
export type StorageView =
  | { state: 'up' | 'down' | 'pending' }
  | { state: 'refused'; reason: StorageRefusalReason; detail: string };

/** The executor link as the lifecycle sees it. */
export interface LinkView {
  /** Connected and handshaken. */
  ready(): boolean;
  /** The executor's Capabilities list `type` (or `*`, the built-in no-op executor). */
  serves(type: string): boolean;
  /** The activity types the executor's Capabilities listed. */
  types(): string[];
  /** The storage service answers (true until a `storage` event, or a state event saying it is pending, says otherwise). */
  storageAvailable(): boolean;
  /** What is known of the storage service. */
  storage(): StorageView;
  /** Runs of `type` need the storage service (the executor declares outputs for it). */
  typeNeedsStorage(type: string): boolean;
  /** The executor said (in its last Resync) it holds `id`: a dispatch must be a re-offer, never a new run. */
  holds(id: string): boolean;
  /** `id` is no longer held by the executor (its Completion was applied, it was lost, the activity ended). */
  release(id: string): void;
  /** The executor's held list, as its latest Resync gave it (replaces the previous one). */
  setHeld(ids: readonly string[]): void;
  /** Applies a `state` event; returns true when the link just became ready (a new connection). */
  onState(ev: StateEvent): boolean;
  /** Applies a `storage` event: available, else refused (with the reason and the service's words) or down. */
  setStorage(available: boolean, refusal?: { reason: StorageRefusalReason; detail: string }): void;
}

/** A link that is not ready, serves nothing and holds nothing; storage counts as available until told otherwise. */
export function createLinkView(): LinkView {
  let ready = false;
  let types = new Set<string>();
  let storageTypes = new Set<string>();
  let storage: StorageView = { state: 'up' };
  let held = new Set<string>();
  return {
    ready: () => ready,
    serves: (type) => types.has('*') || types.has(type),
    types: () => [...types],
    storageAvailable: () => storage.state === 'up',
    storage: () => storage,
    typeNeedsStorage: (type) => storageTypes.has(type),
    holds: (id) => held.has(id),
    release: (id) => void held.delete(id),
    setHeld(ids) {
      held = new Set(ids);
    },
    onState(ev) {
      const was = ready;
      ready = ev.state === 'ready';
      if (ev.activity_types) {
        types = new Set(ev.activity_types);
        storageTypes = new Set(ev.storage_types ?? []);
      }
      if (ev.storage_pending === true && storage.state === 'up') storage = { state: 'pending' };
      return ready && !was;
    },
    setStorage(available, refusal) {
      storage = available ? { state: 'up' } : refusal ? { state: 'refused', ...refusal } : { state: 'down' };
    },
  };
}

/** The refusal in a storage view, for status reports; null unless the service refuses the worker. */
export function storageRefused(v: StorageView): { reason: string; detail: string } | null {
  return v.state === 'refused' ? { reason: v.reason, detail: v.detail } : null;
}
