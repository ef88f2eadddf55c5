/**
 * Every key name in the store, and nothing else decides one. Keys are sortable text: numbers are zero-padded
 * decimal (activity ids to 20 digits, the width of a uint64; larger ids stay unique and still sort after all
 * padded ones).
 *
 *   claim_job:{id}   work seen on chain, not yet claimed by us          (Poller, event ingestion, reconciler)
 *   inflight:{id}    an activity we are claiming / hold / are finishing (lifecycle; states in `records.ts`)
 *   tx:{id}          the latest transaction sent for that activity      (tx manager)
 *   lane:{nonce}     one nonce-lane slot: what was signed for that nonce (tx manager)
 *   done:{id}        a finished activity's summary                      (lifecycle)
 *   nonce:last       the highest nonce reserved so far                  (tx manager)
 *   last_scan_block  the reconciler's / event follower's checkpoint     (reconciler)
 *   quarantine:{key} a record that failed to decode, kept raw for the operator
 *   spend:{minute}   fees of the receipts confirmed in that minute, by kind (supervisor's spend ledger; ~25 h kept)
 *   spend_since      when the spend ledger started recording on this store (the rates' time base)
 */
export const PREFIX = {
  claimJob: 'claim_job:',
  inflight: 'inflight:',
  tx: 'tx:',
  lane: 'lane:',
  done: 'done:',
  quarantine: 'quarantine:',
  spend: 'spend:',
} as const;

export const NONCE_LAST = 'nonce:last';
export const LAST_SCAN_BLOCK = 'last_scan_block';
export const SPEND_SINCE = 'spend_since';

const ID_WIDTH = 20;
const DECIMAL_RE = /^[0-9]+$/;

/** Activity ids are uint256 on chain; in keys and records they are decimal strings. */
export function padId(id: bigint | string): string {
  const s = typeof id === 'bigint' ? id.toString(10) : id;
  if (!DECIMAL_RE.test(s))
    throw new TypeError(`activity id must be a non-negative decimal integer, got ${JSON.stringify(s)}`);
  // Keys are built for every held record on every tick: the trim's regex only when there is a zero to trim.
  const trimmed = s.charCodeAt(0) === 48 ? s.replace(/^0+(?=\d)/, '') : s;
  return trimmed.length >= ID_WIDTH ? trimmed : trimmed.padStart(ID_WIDTH, '0');
}

export function padNonce(nonce: number): string {
  if (!Number.isSafeInteger(nonce) || nonce < 0)
    throw new TypeError(`nonce must be a non-negative integer, got ${nonce}`);
  return String(nonce).padStart(ID_WIDTH, '0');
}

export const claimJobKey = (id: bigint | string): string => PREFIX.claimJob + padId(id);
export const inflightKey = (id: bigint | string): string => PREFIX.inflight + padId(id);
export const txKey = (id: bigint | string): string => PREFIX.tx + padId(id);
export const doneKey = (id: bigint | string): string => PREFIX.done + padId(id);
export const laneKey = (nonce: number): string => PREFIX.lane + padNonce(nonce);
export const quarantineKey = (key: string): string => PREFIX.quarantine + key;
/** The spend bucket of the minute starting at `minuteMs` (a multiple of 60,000). */
export const spendKey = (minuteMs: number): string => PREFIX.spend + padNonce(minuteMs);

/** The activity id (unpadded decimal) from any `{prefix}{id}` key. */
export function idFromKey(key: string): string {
  const i = key.indexOf(':');
  return key.slice(i + 1).replace(/^0+(?=\d)/, '');
}
