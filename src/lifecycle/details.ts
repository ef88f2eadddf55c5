/**
 * Reading a freshly claimed activity's details from the chain (type, input, workflow, expiry, heartbeat timing)
 * into its record: dispatch and heartbeats wait for them.
 */
import { getHeader, readActivities } from '../chain/reads.ts';
import { inflightKey } from '../store/keys.ts';
import { type Inflight, InflightSchema } from '../store/records.ts';
import type { LifecycleContext } from './context.ts';

/** Copies the chain's view of `ids` into their records (ids no longer ours on chain are left alone). */
export type FillDetails = (ids: string[]) => Promise<void>;

/** A `FillDetails` reading at the latest block. */
export function createFillDetails(ctx: Pick<LifecycleContext, 'opts' | 'store' | 'rpc' | 'now'>): FillDetails {
  const { opts, store, rpc, now } = ctx;
  return async (ids) => {
    const head = await getHeader(rpc, 'latest');
    const views = await readActivities(rpc, opts, ids, head.number);
    await store.transact((tx) => {
      for (const v of views) {
        const r = tx.get(inflightKey(v.activityId), InflightSchema);
        if (!r || v.worker !== opts.wallet) continue;
        tx.put(inflightKey(v.activityId), {
          ...r,
          workflow_instance: v.workflowInstance,
          step_index: v.stepIndex,
          activity_type: v.activityType,
          input_ref: v.inputRef,
          expires_at_s: v.expiresAtS,
          heartbeat_timeout_s: v.heartbeatTimeoutS,
          last_heartbeat_s: Math.max(r.last_heartbeat_s ?? 0, v.lastHeartbeatAtS),
          updated_at_ms: now(),
        } satisfies Inflight);
      }
    });
  };
}
