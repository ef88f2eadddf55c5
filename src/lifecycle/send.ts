/**
 * Submitting one lifecycle call through the nonce lane, tracked: its ids are marked in flight BEFORE the submit, so
 * while it waits for its turn (simulation, estimate, a full lane) no other path sees "no tx in flight" and sends
 * the step a second time. A refused submit gives the ids back.
 */
import type { SubmitResult } from '../txmgr/types.ts';
import type { Call } from './calls.ts';
import type { LifecycleContext } from './context.ts';

/** Submits `call` (simulated first when `simulate`); counts the result in `tx_sent`. Throws what the lane throws. */
export type Send = (call: Call, simulate: boolean) => Promise<SubmitResult>;

/** A `Send` over the context's tx sender and tracker. */
export function createSend(ctx: Pick<LifecycleContext, 'txm' | 'tracker' | 'metrics'>): Send {
  const { txm, tracker, metrics } = ctx;
  return async (call, simulate) => {
    const submit = tracker.begin(call.kind, call.activityIds);
    let res: SubmitResult;
    try {
      res = await txm.submit({
        kind: call.kind,
        activityIds: call.activityIds,
        to: call.to,
        data: call.data,
        simulate,
        ...(call.minGasLimit !== undefined ? { minGasLimit: call.minGasLimit } : {}),
        ...(call.priority ? { priority: true } : {}),
        ...(call.stillWanted ? { stillWanted: call.stillWanted } : {}),
        // The ids hold a nonce from its reservation on (before the first broadcast resolves the submit).
        onNonce: (nonce) => submit.sent(nonce),
      });
    } catch (e) {
      submit.abort();
      throw e;
    }
    if (res.ok) {
      metrics.txSent.inc({ kind: call.kind, outcome: 'submitted' });
      submit.sent(res.nonce);
    } else {
      submit.abort();
      metrics.txSent.inc({ kind: call.kind, outcome: `rejected_${res.stage}` });
    }
    return res;
  };
}
