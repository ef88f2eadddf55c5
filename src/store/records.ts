/**
 * Typed records of the store, one valibot schema per key family. Values are stored as UTF-8 JSON; every read is
 * validated, and a record that fails is quarantined (see `store.ts`), never trusted. Field names are snake_case
 * (they are what `wcp db scan --json` shows an operator). Activity ids and big numbers are decimal strings.
 */
import * as v from 'valibot';

const DecimalId = v.pipe(v.string(), v.regex(/^[0-9]+$/, 'a decimal integer string'));
const Hex = v.pipe(v.string(), v.regex(/^0x[0-9a-fA-F]*$/, 'a 0x-prefixed hex string'));
const Ms = v.pipe(v.number(), v.integer(), v.minValue(0));
const Nonce = v.pipe(v.number(), v.integer(), v.minValue(0));

/** `claim_job:{id}`: an activity seen available on chain. Written idempotently (first writer wins). */
export const ClaimJobSchema = v.object({
  activity_id: DecimalId,
  queue_name: v.string(),
  created_at_ms: Ms,
  /** Where we learned of it. */
  source: v.optional(v.picklist(['poll', 'event', 'reconcile']), 'poll'),
  /** Block the observation was made at, when known (event ingestion uses it for reorg handling). */
  block_number: v.optional(v.number()),
  block_hash: v.optional(Hex),
  /** The activity's type and input reference, when the discoverer read them (the claim gate checks them). */
  activity_type: v.optional(v.string()),
  input_ref: v.optional(v.string()),
});
export type ClaimJob = v.InferOutput<typeof ClaimJobSchema>;

/**
 * Activity lifecycle states held in `inflight:{id}`. Legal transitions live in `src/lifecycle/transitions.ts`.
 *   claiming   claim tx reserved/sent, not yet confirmed
 *   claimed    claim confirmed on chain; waiting for executor capacity
 *   assigned   handed to the executor
 *   running    the executor reported it running (Progress)
 *   completing complete tx reserved/sent
 *   failing    fail tx reserved/sent
 *   resuming   completed on chain; resumeWorkflow tx reserved/sent
 */
export const InflightState = v.picklist([
  'claiming',
  'claimed',
  'assigned',
  'running',
  'completing',
  'failing',
  'resuming',
]);
export type InflightState = v.InferOutput<typeof InflightState>;

export const InflightSchema = v.object({
  activity_id: DecimalId,
  state: InflightState,
  queue_name: v.string(),
  workflow_instance: v.optional(DecimalId),
  step_index: v.optional(v.number()),
  activity_type: v.optional(v.string()),
  input_ref: v.optional(v.string()),
  /** Chain timestamps, seconds. */
  expires_at_s: v.optional(v.number()),
  heartbeat_timeout_s: v.optional(v.number()),
  last_heartbeat_s: v.optional(v.number()),
  /** Outcome waiting to be written on chain (completing/failing). */
  result_ref: v.optional(v.string()),
  fail_reason: v.optional(v.string()),
  /**
   * The attempt number of the last dispatch: committed before the assignment is sent and never lowered (a Completion
   * names the attempt it ran). 0 = never dispatched, or rebuilt from chain with no attempt history.
   */
  dispatch_attempts: v.optional(v.number(), 0),
  /**
   * Dispatches not counted toward max_dispatch_attempts: refused by the bridge before they reached the executor,
   * given back by an executor shutting down (a clean stream end, a SHUTTING_DOWN failure), lost across a wcp
   * restart, or lost in an executor crash beside other tasks (not shown to be the task's fault).
   */
  refused_dispatches: v.optional(v.number()),
  /** Times an executor crash lost this task (the executor's stream failed and its next Resync did not list it). */
  crash_losses: v.optional(v.number()),
  /**
   * Suspected of crashing its executor: from now on dispatched alone (nothing else assigned while it runs, and it
   * waits until the executor holds nothing else), so that its next crash is conclusive. Never cleared.
   */
  isolate: v.optional(v.boolean()),
  created_at_ms: Ms,
  updated_at_ms: Ms,
});
export type Inflight = v.InferOutput<typeof InflightSchema>;

/**
 * What a transaction does. One lane slot carries one of these. `delegate`: a type-4 (EIP-7702) transaction to the
 * wallet itself that delegates it to the pinned batch executor, or revokes (delegates to the zero address).
 * `batch`: a transaction to the delegated wallet itself running many lifecycle calls (its `calls`).
 */
export const TxKind = v.picklist([
  'claim',
  'claim_batch',
  'heartbeat',
  'complete',
  'fail',
  'resume',
  'noop',
  'delegate',
  'batch',
]);
export type TxKind = v.InferOutput<typeof TxKind>;
/** The kinds of the lifecycle's own calls: what a `batch` transaction carries, one call each. */
export const CallKind = v.picklist(['claim', 'claim_batch', 'heartbeat', 'complete', 'fail', 'resume']);
export type CallKind = v.InferOutput<typeof CallKind>;
/** One call of a `batch` lane record, in the order of its calldata: its kind and the activities it acts for. */
export const BatchCallSchema = v.object({ kind: CallKind, activity_ids: v.array(DecimalId) });
export type BatchCall = v.InferOutput<typeof BatchCallSchema>;

/** `tx:{id}`: the latest transaction sent on behalf of one activity. */
export const TxRefSchema = v.object({
  activity_id: DecimalId,
  kind: TxKind,
  nonce: Nonce,
  tx_hash: v.optional(Hex),
  max_fee_per_gas: v.optional(DecimalId),
  max_priority_fee_per_gas: v.optional(DecimalId),
  attempts: v.number(),
  updated_at_ms: Ms,
});
export type TxRef = v.InferOutput<typeof TxRefSchema>;

/**
 * `lane:{nonce}`: one slot of the nonce lane. Written (state `reserved`, with the exact calldata) *before* the
 * first broadcast, so a crash can never reuse the nonce for a different meaning. Every re-sign with higher fees
 * appends its hash to `hashes` before it is broadcast.
 */
export const LaneState = v.picklist(['reserved', 'sent', 'mined', 'confirmed', 'failed', 'replaced_by_noop']);
export type LaneState = v.InferOutput<typeof LaneState>;
/**
 * A signed EIP-7702 authorization carried by a type-4 lane record. Always the wallet's own (authority = the sender),
 * so its nonce is the record's nonce + 1: the transaction's own nonce is used before the list is processed, and the
 * lane must not give that second nonce to another transaction (`nonce-lane.ts`). Kept signed in the record so a
 * bump or a re-send after a restart carries the very same authorization.
 */
export const AuthorizationSchema = v.object({
  chain_id: DecimalId,
  address: Hex,
  nonce: Nonce,
  y_parity: v.picklist([0, 1]),
  r: Hex,
  s: Hex,
});
export type Authorization = v.InferOutput<typeof AuthorizationSchema>;

export const LaneTxSchema = v.object({
  nonce: Nonce,
  kind: TxKind,
  activity_ids: v.array(DecimalId),
  to: Hex,
  data: Hex,
  /**
   * A `batch` (one transaction from the wallet to itself running many lifecycle calls, EIP-7702): its calls in
   * calldata order. Persisted with the record, so a receipt seen after a restart is still split per call.
   */
  calls: v.optional(v.array(BatchCallSchema)),
  value: v.optional(DecimalId, '0'),
  /** Present on a type-4 transaction (kind `delegate`): its authorization list, signed. */
  authorization_list: v.optional(v.array(AuthorizationSchema)),
  gas_limit: DecimalId,
  max_fee_per_gas: DecimalId,
  max_priority_fee_per_gas: DecimalId,
  /** Every hash ever broadcast for this nonce, oldest first; any of them may be the one that gets mined. */
  hashes: v.array(Hex),
  attempts: v.number(),
  state: LaneState,
  /** Receipt facts once mined. */
  mined_hash: v.optional(Hex),
  block_number: v.optional(v.number()),
  block_hash: v.optional(Hex),
  receipt_status: v.optional(v.number()),
  gas_used: v.optional(DecimalId),
  error: v.optional(v.string()),
  /** The slot's fee ceiling in wei (min of the policy cap and feeCapMultiplier × the first suggestion). */
  fee_cap_wei: v.optional(DecimalId),
  created_at_ms: Ms,
  sent_at_ms: v.optional(Ms),
  updated_at_ms: Ms,
});
export type LaneTx = v.InferOutput<typeof LaneTxSchema>;

/** `done:{id}`: how an activity ended for us. */
export const DoneOutcome = v.picklist(['completed', 'failed', 'lost', 'expired', 'finished_elsewhere']);
export type DoneOutcome = v.InferOutput<typeof DoneOutcome>;
export const DoneSchema = v.object({
  activity_id: DecimalId,
  outcome: DoneOutcome,
  queue_name: v.optional(v.string()),
  workflow_instance: v.optional(DecimalId),
  activity_type: v.optional(v.string()),
  result_ref: v.optional(v.string()),
  reason: v.optional(v.string()),
  /** Whether resumeWorkflow was sent and confirmed (or not needed). */
  resumed: v.optional(v.boolean()),
  finished_at_ms: Ms,
});
export type Done = v.InferOutput<typeof DoneSchema>;

/** `nonce:last`: the highest nonce reserved so far. */
export const NonceLastSchema = v.object({ nonce: v.pipe(v.number(), v.integer(), v.minValue(-1)), updated_at_ms: Ms });
export type NonceLast = v.InferOutput<typeof NonceLastSchema>;

/** `last_scan_block`: scanning checkpoint: every block up to and including `block_number` was ingested. */
export const ScanCheckpointSchema = v.object({
  block_number: v.pipe(v.number(), v.integer(), v.minValue(0)),
  block_hash: v.optional(Hex),
  updated_at_ms: Ms,
});
export type ScanCheckpoint = v.InferOutput<typeof ScanCheckpointSchema>;

/** `quarantine:{key}`: a record that could not be decoded, kept for the operator. */
export const QuarantineSchema = v.object({
  key: v.string(),
  raw_base64: v.string(),
  error: v.string(),
  quarantined_at_ms: Ms,
});
export type Quarantine = v.InferOutput<typeof QuarantineSchema>;

/** Gas, fees (wei) and transactions of one kind in a spend bucket. */
const SpendFigures = v.object({ txs: v.number(), gas: DecimalId, wei: DecimalId });

/**
 * `spend:{minute}`: what the receipts confirmed in one minute cost, from `gasUsed × effectiveGasPrice` of each
 * (supervisor's spend ledger). `wasted`: the part that bought nothing (reverted, noop fills, claims that won no
 * activity); `completed`: activities whose complete tx was confirmed.
 */
export const SpendBucketSchema = v.object({
  minute_ms: Ms,
  by_kind: v.record(v.string(), SpendFigures),
  wasted: SpendFigures,
  completed: v.number(),
});
export type SpendBucket = v.InferOutput<typeof SpendBucketSchema>;

/** `spend_since`: when this store's spend ledger started recording. */
export const SpendSinceSchema = v.object({ since_ms: Ms });
