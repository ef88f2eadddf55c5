/**
 * Plain data for the lifecycle's unit tests: addresses, options, a held record, and the writes of a decision applied
 * to a map the way `records.commit` applies them to the store. No store, no fakes: what pure decision tests need.
 */
import type { Inflight } from '../../store/records.ts';
import type { Decision } from '../effects.ts';
import type { LifecycleOptions } from '../options.ts';

export const WALLET = '0x70997970c51812dc3a010c7d01b50e0d17dc79c8';
export const OTHER = '0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc';
export const TQ = '0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0';
export const WF = '0xcf7ed3acca5a467e9e704c703e8d87f634fb0fc9';
export const MC = '0xca11bde05977b3631167028862be2a173976ca11';
/** The fake chain's time, seconds. */
export const NOW_S = 1_700_000_000;

export const testOptions: LifecycleOptions = {
  wallet: WALLET,
  taskQueue: TQ,
  workflowEngine: WF,
  multicall3: MC,
  queueName: 'q',
  mode: 'claim',
  maxInflight: 8,
  claimBatch: 8,
  heartbeatIntervalMs: 10_000,
  laneMaxInFlight: 16,
  maxDispatchAttempts: 3,
  reofferLostTasks: true,
  doneRetentionMs: 24 * 3_600_000,
  batch: { mode: 'per-call', reason: 'tests' },
};

/** A held record in `state`, details read, last heartbeat `lastHeartbeatS`. */
export function held(id: string, state: Inflight['state'], lastHeartbeatS = NOW_S): Inflight {
  return {
    activity_id: id,
    state,
    queue_name: 'q',
    activity_type: 'echo',
    input_ref: '',
    expires_at_s: NOW_S + 3600,
    heartbeat_timeout_s: 600,
    last_heartbeat_s: lastHeartbeatS,
    dispatch_attempts: state === 'claimed' ? 0 : 1,
    created_at_ms: 1,
    updated_at_ms: 1,
  };
}

/** The inflight records after `d`'s writes (`end` and `requeue` remove the record). */
export function applied(records: ReadonlyMap<string, Inflight>, d: Decision): Map<string, Inflight> {
  const out = new Map(records);
  for (const w of d.writes) {
    if (w.kind === 'put') out.set(w.record.activity_id, w.record);
    else out.delete(w.kind === 'end' ? w.done.activity_id : w.job.activity_id);
  }
  return out;
}

/** Records by id. */
export const recs = (...rs: Inflight[]) => new Map(rs.map((r) => [r.activity_id, r]));
