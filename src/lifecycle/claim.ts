/**
 * The claim step: takes claim jobs while there is room (held records not yet finished by the executor below
 * `maxInflight`, lane below its capacity minus the reserved slots), simulates each claim (a lost race costs an
 * eth_call, not gas), moves the winners to `claiming` in one store transaction and sends them as one batch claim. A claim that is not sent goes back to the queue.
 * Only what can run now is claimed (`claim-gate.ts`: executor ready with credits, type served, storage answering),
 * and nothing while any reason of the pause set holds (`pauses.ts`); the reasons this step judges (held records at
 * `max_inflight`, a full lane, an inactive worker per the simulation) are judged every round.
 */
import { errorText } from '../internal/errors.ts';
import { claimJobKey, doneKey, inflightKey } from '../store/keys.ts';
import { ClaimJobSchema, type Inflight, InflightSchema } from '../store/records.ts';
import { claimCall, claimSimulationCall } from './calls.ts';
import { type ClaimGate, claimCandidates, JOB_REASONS } from './claim-gate.ts';
import type { LifecycleContext } from './context.ts';
import type { Recheck } from './finish.ts';
import { CLAIM_CALLS_PER_BATCHED_ROUND, CLAIM_RESERVED_SLOTS, INACTIVE_WORKER_PAUSE_MS } from './options.ts';
import type { Send } from './send.ts';
import { listHeld } from './records.ts';
import { FINISHING_STATES } from './transitions.ts';

/** Reverts that mean "not claimable any more": why is the chain's to say, so the activity is re-checked. */
const REFUSED = new Set(['NotClaimable', 'UnknownActivity', 'ActivityExpired']);

export interface ClaimStep {
  /** One claim round; does nothing unless `enabled` (running, claims enabled) and not paused. */
  run(enabled: boolean): Promise<void>;
}

/** The claim step. */
export function createClaimStep(
  ctx: Pick<LifecycleContext, 'opts' | 'store' | 'txm' | 'now' | 'log'>,
  deps: { send: Send; recheck: Recheck; gate: ClaimGate },
): ClaimStep {
  const { opts, store, txm, now, log } = ctx;
  const { pauses } = deps.gate;
  /** Until when a simulation's NotActiveWorker holds `worker_inactive` (the chain watch may release it sooner). */
  let inactiveUntilMs = 0;

  /** Simulates the jobs' claims; returns the winners (≤ want), or null when claims must pause. */
  async function simulate(jobIds: string[], want: number): Promise<string[] | null> {
    const reqs = jobIds.map((id) => ({ ...claimSimulationCall(opts.taskQueue, id), simulate: true }));
    // One round trip for all of them where the wallet batches (each claim then sees the ones before it claimed).
    const results = txm.simulateMany
      ? await txm.simulateMany(reqs)
      : await Promise.all(reqs.map((r) => txm.simulate(r)));
    const sims = jobIds.map((id, i) => ({ id, sim: results[i] as (typeof results)[number] }));
    const winners: string[] = [];
    const refused: string[] = [];
    for (const { id, sim } of sims) {
      if (sim.ok) {
        if (winners.length < want) winners.push(id);
        continue;
      }
      const name = sim.revert?.name ?? '';
      if (name === 'NotActiveWorker') {
        inactiveUntilMs = now() + INACTIVE_WORKER_PAUSE_MS;
        pauses.set(
          'worker_inactive',
          true,
          { wallet: opts.wallet, detail: 'a claim simulation says this wallet is not an active worker' },
          'simulation',
        );
        return null;
      }
      if (REFUSED.has(name)) {
        refused.push(id);
        log.info('claim refused by simulation (no gas spent); reading the activity', {
          activity_id: id,
          reason: sim.revert?.message ?? name,
        });
      } else {
        log.warn('claim simulation failed', { activity_id: id, error: sim.error.message });
      }
    }
    // Someone else won (lost), it expired, or our own claim landed while this claim job was stale (then the
    // activity is ours: rebuilt, not lost).
    if (refused.length)
      await deps
        .recheck(refused, 'claim simulation refused')
        .catch((e: unknown) => log.warn('re-check after a refused claim failed; will retry', { error: errorText(e) }));
    return winners;
  }

  /** Moves the winners' jobs to `claiming` records; returns the ids taken (jobs gone or held meanwhile are skipped). */
  async function take(winners: string[]): Promise<string[]> {
    return await store.transact((tx) => {
      const ok: string[] = [];
      const at = now();
      for (const id of winners) {
        const job = tx.get(claimJobKey(id), ClaimJobSchema);
        if (!job || tx.has(inflightKey(id)) || tx.has(doneKey(id))) continue;
        tx.del(claimJobKey(id));
        tx.put(inflightKey(id), {
          activity_id: id,
          state: 'claiming',
          queue_name: job.queue_name,
          dispatch_attempts: 0,
          created_at_ms: at,
          updated_at_ms: at,
        } satisfies Inflight);
        ok.push(id);
      }
      return ok;
    });
  }

  /** Claiming records whose claim was not sent go back to the claim queue. */
  async function giveBack(ids: string[]): Promise<void> {
    await store.transact((tx) => {
      for (const id of ids) {
        const r = tx.get(inflightKey(id), InflightSchema);
        if (r?.state !== 'claiming') continue;
        tx.del(inflightKey(id));
        tx.put(claimJobKey(id), {
          activity_id: id,
          queue_name: r.queue_name,
          created_at_ms: r.created_at_ms,
          source: 'poll',
        });
      }
    });
  }

  return {
    async run(enabled) {
      if (!enabled || opts.mode !== 'claim') return;
      // Every cause is judged every round, so each reason is released in the first round its cause is gone.
      if (now() >= inactiveUntilMs) pauses.set('worker_inactive', false, {}, 'simulation');
      // Records only waiting on the chain (completing, failing, resuming) need no executor slot: they do not count.
      const heldNow = listHeld(store).filter((r) => !FINISHING_STATES.has(r.state)).length;
      const room = opts.maxInflight - heldNow;
      pauses.set('max_inflight', room <= 0, { held: heldNow, max_inflight: opts.maxInflight });
      const pending = txm.inFlight();
      const laneRoom = opts.laneMaxInFlight - CLAIM_RESERVED_SLOTS - pending;
      pauses.set('lane_full', laneRoom <= 0, {
        pending_txs: pending,
        max_in_flight: opts.laneMaxInFlight,
        reserved: CLAIM_RESERVED_SLOTS,
      });
      const gateRoom = deps.gate.room();
      const blocked = pauses.list().filter((r) => !(JOB_REASONS as readonly string[]).includes(r));
      if (blocked.length > 0) return;
      // Batching, one round claims what can run now in several claim calls (one transaction carries them all).
      const calls = opts.batch.mode === 'batch' ? CLAIM_CALLS_PER_BATCHED_ROUND : 1;
      const want = Math.min(room, opts.claimBatch * calls, gateRoom);
      if (want <= 0) return;
      const candidates = claimCandidates(store, want);
      if (candidates.length === 0) {
        deps.gate.open();
        return;
      }
      const jobs = (await deps.gate.admit(candidates)).slice(0, want * 2).map((j) => j.activity_id);
      if (jobs.length === 0) return;
      const winners = await simulate(jobs, want);
      if (!winners || winners.length === 0) return;
      const taken = await take(winners);
      const chunks: string[][] = [];
      for (let i = 0; i < taken.length; i += opts.claimBatch) chunks.push(taken.slice(i, i + opts.claimBatch));
      await Promise.all(chunks.map(sendClaim));
    },
  };

  /** Sends one claim call for `ids` (in `claiming`); a claim not sent gives them back to the claim queue. */
  async function sendClaim(ids: string[]): Promise<void> {
    let res: Awaited<ReturnType<Send>>;
    try {
      res = await deps.send(claimCall(opts.taskQueue, ids), false);
    } catch (e) {
      // Never left in `claiming` with no transaction: a submit that threw (after its in-place retries) used no
      // nonce, so the jobs go back to the queue for the next round.
      log.warn('claim not sent (submit failed); back to the claim queue', {
        activity_ids: ids.join(','),
        error: errorText(e),
      });
      await giveBack(ids);
      return;
    }
    if (!res.ok) {
      log.warn('claim not sent; back to the claim queue', {
        activity_ids: ids.join(','),
        error: res.error.message,
        stage: res.stage,
      });
      await giveBack(ids);
      return;
    }
    log.info('claim sent', { activity_ids: ids.join(','), nonce: res.nonce, tx_hash: res.hash });
  }
}
