/**
 * The last `LOG_RING_SIZE` warnings and errors, for the operator's page (`/status` → `recent_problems`): each as
 * the log printed it, so already redacted (`logger.ts` hands in the record it wrote), and cut to a bounded size.
 * Worker threads log with their own logger: their entries come to the main thread's ring over a
 * BroadcastChannel, so the ring holds what every thread of the daemon said.
 */
import { BroadcastChannel, isMainThread } from 'node:worker_threads';

export const LOG_RING_SIZE = 50;
/** Longest text kept of one field (or the message) in a ring entry. */
export const LOG_RING_TEXT_MAX = 1_000;
const CHANNEL = 'wcp-log-ring';

export interface LogEntry {
  ts: string;
  level: string;
  tag: string;
  msg: string;
  fields: Record<string, unknown>;
}

const ring: LogEntry[] = [];
let channel: BroadcastChannel | undefined;

function push(e: LogEntry): void {
  ring.push(e);
  if (ring.length > LOG_RING_SIZE) ring.splice(0, ring.length - LOG_RING_SIZE);
}

function open(): BroadcastChannel {
  if (channel) return channel;
  channel = new BroadcastChannel(CHANNEL);
  // A thread's channel also receives the other threads' entries: it drops them (a channel nobody listens on could
  // hold them).
  channel.onmessage = isMainThread ? (m) => push((m as { data: LogEntry }).data) : () => {};
  // The channel never keeps a process (or a thread) alive.
  (channel as unknown as { unref?: () => void }).unref?.();
  return channel;
}
if (isMainThread) open();

const cut = (v: unknown): unknown =>
  typeof v === 'string' && v.length > LOG_RING_TEXT_MAX ? `${v.slice(0, LOG_RING_TEXT_MAX)}…` : v;

/** Keeps one warning or error: `line` is the redacted JSON record the logger printed (ts, level, tag, msg, fields). */
export function keepProblem(line: string): void {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    rec = { msg: line };
  }
  const { ts, level, tag, msg, ...fields } = rec;
  const e: LogEntry = {
    ts: String(ts),
    level: String(level),
    tag: String(tag),
    msg: String(cut(msg)),
    fields: Object.fromEntries(
      Object.entries(fields).map(([k, v]) => [k, cut(typeof v === 'object' ? JSON.stringify(v) : v)]),
    ),
  };
  if (isMainThread) push(e);
  else open().postMessage(e);
}

/** The kept warnings and errors, newest last. */
export function recentProblems(): LogEntry[] {
  return ring.slice();
}
