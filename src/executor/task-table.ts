/**
 * The bridge's task table: the tasks in flight to the executor, and a memory of recently closed ones, so a
 * duplicate or late Completion can be told apart from one for an activity this wcp never assigned.
 */
import type { TaskSpec } from './messages.ts';

/** One task the bridge holds, from reservation (presigning) until it is closed. */
export interface InflightTask {
  task: TaskSpec;
  /** `reserved` while its URLs are presigned (not yet on the stream), then `sent`. */
  stage: 'reserved' | 'sent';
  /** Blob references the task's input names (allowed for GET StorageRequests and as pass-through outputs). */
  inputRefs: Set<string>;
  cancelReason: string | undefined;
  cancelSent: boolean;
}

/** How a task left the table. */
export type ClosedHow = 'completed' | 'rejected' | 'lost' | 'expired' | 'cancelled';

/** Size of each of the two generations of the closed-task memory. */
export const CLOSED_MEMORY = 10_000;

/** The in-flight tasks by activity id, and how recently closed ones were closed. */
export interface TaskTable {
  get(id: string): InflightTask | undefined;
  has(id: string): boolean;
  readonly size: number;
  ids(): IterableIterator<string>;
  /** Every in-flight entry; deleting (closing) the current entry while iterating is safe. */
  entries(): IterableIterator<[string, InflightTask]>;
  add(entry: InflightTask): void;
  /** Drops a task that never reached the executor, without remembering it (it may be offered again). */
  release(id: string): void;
  /** Removes a task from flight and remembers how it ended. */
  close(id: string, how: ClosedHow): void;
  /** How `id` was closed, if it was closed within the memory's reach (at least `closedMemory` closes ago). */
  closedAs(id: string): ClosedHow | undefined;
}

/**
 * Builds an empty table. The closed memory keeps two generations of up to `closedMemory` ids each: when the young
 * one fills up it becomes the old one and the previous old one is dropped. Evicting one Map's oldest key at a time
 * would not do: each `keys().next()` walks the deleted entries left at the Map's front.
 */
export function createTaskTable(closedMemory = CLOSED_MEMORY): TaskTable {
  const inflight = new Map<string, InflightTask>();
  let closed = new Map<string, ClosedHow>();
  let closedOld = new Map<string, ClosedHow>();

  return {
    get: (id) => inflight.get(id),
    has: (id) => inflight.has(id),
    get size() {
      return inflight.size;
    },
    ids: () => inflight.keys(),
    entries: () => inflight.entries(),
    add(entry) {
      inflight.set(entry.task.activity_id, entry);
    },
    release(id) {
      inflight.delete(id);
    },
    close(id, how) {
      inflight.delete(id);
      closedOld.delete(id);
      closed.set(id, how);
      if (closed.size >= closedMemory) {
        closedOld = closed;
        closed = new Map();
      }
    },
    closedAs: (id) => closed.get(id) ?? closedOld.get(id),
  };
}
