/**
 * The daemon's store as end-to-end tests read it: `wcp db scan` by key prefix (empty before wcp has created the
 * store, so a poll can start before the daemon does), and typed views of the lane, done and inflight records.
 */
import { existsSync } from 'node:fs';
import { type Sandbox, type StoreRecord, wcpScan } from '../../scripts/lib/wcp-process.ts';

/** The records under `prefix`, in key order; none while wcp has not created its store yet. */
export function scan(sb: Sandbox, prefix: string): StoreRecord[] {
  return existsSync(sb.dbPath) ? wcpScan(sb, prefix) : [];
}

/** Every key family of the store. */
export const STORE_PREFIXES = [
  'claim_job:',
  'inflight:',
  'tx:',
  'lane:',
  'done:',
  'nonce:',
  'last_scan_block',
  'quarantine:',
];

/** Every record of the store, by key family. */
export function dumpStore(sb: Sandbox): Record<string, StoreRecord[]> {
  return Object.fromEntries(STORE_PREFIXES.map((p) => [p, scan(sb, p)]));
}

/** A `lane:` record: one nonce of the wallet, what it carries and how far it got. */
export interface LaneRec {
  nonce: number;
  kind: string;
  state: string;
  activity_ids: string[];
  hashes: string[];
  mined_hash?: string;
  receipt_status?: number;
  attempts: number;
  max_fee_per_gas: string;
  max_priority_fee_per_gas: string;
  /** A delegation (kind `delegate`, type 4): its signed authorizations, each using the nonce it names. */
  authorization_list?: Array<{ nonce: number }>;
  /** A batch (EIP-7702): its calls' kinds and ids. */
  calls?: Array<{ kind: string; activity_ids: string[] }>;
}

/**
 * The kinds of the lifecycle calls lane records carried: a plain record's kind, each call of a batch; the
 * delegation (setup, not a lifecycle call) left out.
 */
export function callKinds(recs: ReadonlyArray<Pick<LaneRec, 'kind' | 'calls'>>): Set<string> {
  return new Set(recs.flatMap((r) => (r.calls ? r.calls.map((c) => c.kind) : r.kind === 'delegate' ? [] : [r.kind])));
}

/** A `done:` record: how an activity ended here. */
export interface DoneRec {
  activity_id: string;
  outcome: string;
  resumed?: boolean;
  reason?: string;
}

/** The lane records, in nonce order. */
export const laneRecords = (sb: Sandbox): LaneRec[] => scan(sb, 'lane:').map((e) => e.value as unknown as LaneRec);
/** The done records, in activity id order. */
export const doneRecords = (sb: Sandbox): DoneRec[] => scan(sb, 'done:').map((e) => e.value as unknown as DoneRec);
/** The done records by activity id (all fields). */
export const doneById = (sb: Sandbox) => new Map(scan(sb, 'done:').map((r) => [String(r.value.activity_id), r.value]));
/** The inflight records by activity id (all fields). */
export const inflightById = (sb: Sandbox) =>
  new Map(scan(sb, 'inflight:').map((r) => [String(r.value.activity_id), r.value]));
