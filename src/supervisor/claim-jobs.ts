/**
 * Recording discovered work: `claim_job:{id}` is written once per activity, first writer wins, and never for an
 * activity we already hold (`inflight:`) or finished (`done:`). One store transaction per batch, so a crash
 * leaves either all or none of a batch, and a restart re-polling the same activities writes nothing new.
 */
import { claimJobKey, doneKey, inflightKey } from '../store/keys.ts';
import type { ClaimJob } from '../store/records.ts';
import type { Store } from '../store/store.ts';

export async function recordClaimJobs(store: Store, jobs: ClaimJob[]): Promise<ClaimJob[]> {
  if (jobs.length === 0) return [];
  return await store.transact((tx) => {
    const added: ClaimJob[] = [];
    for (const job of jobs) {
      const id = job.activity_id;
      if (tx.has(claimJobKey(id)) || tx.has(inflightKey(id)) || tx.has(doneKey(id))) continue;
      tx.put(claimJobKey(id), job);
      added.push(job);
    }
    return added;
  });
}
