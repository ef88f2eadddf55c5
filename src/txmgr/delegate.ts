/**
 * Delegating the wallet (EIP-7702): a type-4 transaction from the wallet to itself whose one authorization names
 * the pinned batch executor (or the zero address: a revocation). Only those two targets are ever signed, and the
 * executor only after its code and code hash were checked with `eth_getCode`.
 *
 * A self-sponsored delegation uses TWO nonces: the transaction's N and the authorization's N + 1 (the
 * transaction's nonce is used before the list is processed). So the lane is held (`lane.held`: new submits wait
 * as for a full lane) from before N is taken until the transaction is mined and the next nonce has been read from
 * the chain again, which also covers a node that skipped the authorization (then N + 1 is still free). The
 * delegation waits for the lane to be empty before it takes N: nothing else is in flight around it. After a
 * restart, the re-sync hands an open delegation record here (`resume`): the lane is held the same way until it
 * is mined. After mining, `eth_getCode` must show the expected designator, else the delegation failed (the
 * authorization was skipped).
 */
import { BATCH_EXECUTOR, designatorFor, executorDeployed, ZERO_ADDRESS } from '../chain/batch-executor.ts';
import { STEP_RETRY, withRetry } from '../chain/transport.ts';
import { errorText, type WireError } from '../internal/errors.ts';
import type { Authorization, LaneTx } from '../store/records.ts';
import { rpcAuthorization } from './authorization.ts';
import type { BroadcastCtx, Broadcaster } from './broadcaster.ts';
import { gasWithMargin } from './fees.ts';
import type { LaneState } from './lane-state.ts';
import { persistReservation } from './nonce-lane.ts';
import type { Recorder } from './record.ts';
import type { TxEvent } from './types.ts';

/** What a delegation came to. */
export type DelegateResult =
  | { ok: true; target: string; nonce: number; hash: string }
  | { ok: false; error: WireError; nonce?: number; hash?: string };

export interface DelegateCtx
  extends Pick<BroadcastCtx, 'store' | 'rpc' | 'policy' | 'log' | 'now' | 'chainId' | 'address'> {
  broadcaster: Broadcaster;
  recorder: Recorder;
  lane: LaneState;
  /** Signs the wallet's own authorization (the key stays in the manager's closure). */
  signAuth: (req: { address: string; nonce: number; chainId: number }) => Authorization;
  /** Whether a submit turn is handing out nonces right now. */
  reserving: () => boolean;
  /** The error to report when the manager is not running, or undefined while it is. */
  notRunning: () => WireError | undefined;
}

export interface Delegator {
  /** Delegates to `target` (the pinned executor or the zero address); resolves once mined and checked. */
  delegate(target: string, opts?: { drainTimeoutMs?: number }): Promise<DelegateResult>;
  /** The re-sync found an open delegation record (its slot is in the lane): hold the lane until it is mined. */
  resume(rec: LaneTx): void;
  /** The delegation under way, if any. */
  current(): Promise<DelegateResult> | undefined;
  /** Every lane event (the delegation waits for its own nonce's `mined` or `failed`). */
  onEvent(ev: TxEvent): void;
  /** The manager stops: a delegation waiting for its receipt ends as failed (the record stays; a restart resumes it). */
  stop(): void;
}

/** How long a delegation waits by default for the lane to empty before it gives up (no nonce taken). */
export const DELEGATE_DRAIN_TIMEOUT_MS = 60_000;
/** A type-4 transaction with one authorization costs at least 21000 + 25000 gas; used when estimation fails. */
const DELEGATE_GAS_FLOOR = 60_000n;

const refused = (message: string, retryable = false): DelegateResult => ({
  ok: false,
  error: { code: 'TX_REFUSED', message, retryable },
});

export function createDelegator(ctx: DelegateCtx): Delegator {
  const { rpc, log, lane, address } = ctx;
  let under: Promise<DelegateResult> | undefined;
  /** The nonce whose `mined`/`failed` event ends the hold, and who waits for it. */
  let waiting: { nonce: number; done: (ev: Extract<TxEvent, { type: 'mined' | 'failed' }>) => void } | undefined;

  const txCount = async (tag: 'latest' | 'pending') =>
    Number(BigInt(await withRetry(() => rpc.request<string>('eth_getTransactionCount', [address, tag]), STEP_RETRY)));

  function release(): void {
    lane.held = false;
    waiting = undefined;
    lane.wake();
  }

  /** Waits for the slot at `nonce` to be mined (or given up), re-reads the next nonce, checks the wallet's code. */
  async function finish(nonce: number, target: string, hash: string): Promise<DelegateResult> {
    const ev = await new Promise<Extract<TxEvent, { type: 'mined' | 'failed' }>>((done) => {
      waiting = { nonce, done };
    });
    try {
      // N + 1 was used by the authorization, or is still free if the node skipped it: the chain says which.
      for (;;) {
        try {
          lane.nextNonce = Math.max(lane.nextNonce, await txCount('pending'));
          break;
        } catch (e) {
          if (ctx.notRunning()) throw e;
          log.warn('could not read the nonce after the delegation; retrying', { error: errorText(e) });
          await new Promise((r) => setTimeout(r, 1_000));
        }
      }
      if (ev.type === 'failed') return { ok: false, error: ev.error, nonce, hash };
      const code = (
        await withRetry(() => rpc.request<string>('eth_getCode', [address, 'latest']), STEP_RETRY)
      ).toLowerCase();
      const want = designatorFor(target);
      if (code !== want) {
        const message = `the delegation transaction ${ev.hash} was mined but the wallet's code is ${code.slice(0, 48)}, not ${want}: the authorization was skipped`;
        log.error('delegation failed', { nonce, tx_hash: ev.hash, target });
        return { ok: false, error: { code: 'TX_REFUSED', message, retryable: true }, nonce, hash: ev.hash };
      }
      // The designator is there, so the authorization was applied and used N + 1, whatever a lagging node said
      // about the nonce (a revocation's empty code proves nothing: it may have been empty before).
      if (target !== ZERO_ADDRESS) lane.nextNonce = Math.max(lane.nextNonce, nonce + 2);
      log.info(target === ZERO_ADDRESS ? 'delegation revoked' : 'wallet delegated', {
        target,
        nonce,
        tx_hash: ev.hash,
        next_nonce: lane.nextNonce,
      });
      return { ok: true, target, nonce, hash: ev.hash };
    } finally {
      release();
    }
  }

  /** Waits until no slot is pending and no submit turn is under way; false on timeout. */
  async function drained(timeoutMs: number): Promise<boolean> {
    const deadline = ctx.now() + timeoutMs;
    while (lane.pendingCount() > 0 || ctx.reserving()) {
      if (ctx.notRunning() || ctx.now() > deadline) return false;
      await Promise.race([lane.changed(), new Promise((r) => setTimeout(r, 200))]);
    }
    return true;
  }

  async function estimate(auth: Authorization): Promise<bigint> {
    try {
      const g = await withRetry(
        () =>
          rpc.request<string>('eth_estimateGas', [
            { from: address, to: address, type: '0x4', authorizationList: [rpcAuthorization(auth)] },
          ]),
        STEP_RETRY,
      );
      const limit = gasWithMargin(BigInt(g), ctx.policy.gasLimitMarginPercent);
      return limit > DELEGATE_GAS_FLOOR ? limit : DELEGATE_GAS_FLOOR;
    } catch (e) {
      log.warn('delegation gas estimate failed; using the floor', { error: errorText(e) });
      return DELEGATE_GAS_FLOOR * 2n;
    }
  }

  async function run(target: string, drainTimeoutMs: number): Promise<DelegateResult> {
    const revoke = target === ZERO_ADDRESS;
    if (!revoke && target !== BATCH_EXECUTOR.address)
      return refused(
        `wcp delegates only to the pinned batch executor ${BATCH_EXECUTOR.address} or revokes; not ${target}`,
      );
    // Held from the call on (before any await): a submit made after `delegate()` waits for it, whatever the RPC's pace.
    lane.held = true;
    let nonce: number | undefined;
    /** `finish` owns the hold from now on. */
    let finishing = false;
    try {
      if (!revoke && !(await executorDeployed(rpc)))
        return refused(
          `the pinned batch executor is not deployed on chain ${ctx.chainId}: no code with hash ${BATCH_EXECUTOR.codeHash} at ${BATCH_EXECUTOR.address}`,
        );
      if (!(await drained(drainTimeoutMs)))
        return refused(`the lane did not empty within ${drainTimeoutMs} ms; not delegating now`, true);
      const pending = await txCount('pending');
      if (pending !== lane.nextNonce)
        return refused(
          `the chain's next nonce (${pending}) is not the lane's (${lane.nextNonce}): not delegating while they differ`,
          true,
        );
      const suggestion = await withRetry(() => ctx.broadcaster.suggestFees(), STEP_RETRY);
      // Taken with no await since the last check of the lane (a submit turn marks itself synchronously).
      if (lane.pendingCount() > 0 || ctx.reserving() || lane.nextNonce !== pending)
        return refused('the lane moved while the delegation was prepared; try again', true);
      // The lane is held: no submit takes `pending` meanwhile. The lane's next nonce moves past it only once the
      // record holds it (below): before that, the confirmer's hole watch would see a nonce below the lane's next one
      // that no slot holds (the estimate may take seconds) and fill it with a noop.
      nonce = pending;
      const auth = ctx.signAuth({ address: target, nonce: nonce + 1, chainId: ctx.chainId });
      const gas = await estimate(auth);
      const t = ctx.now();
      const { rec, signed, capWei } = await ctx.recorder.newRecord(
        {
          nonce,
          kind: 'delegate',
          activity_ids: [],
          to: address,
          data: '0x',
          authorization_list: [auth],
          gas_limit: gas,
        },
        suggestion,
        t,
      );
      await persistReservation(ctx.store, rec, t);
      const slot = lane.newSlot(rec, signed, capWei);
      lane.slots.set(nonce, slot);
      lane.nextNonce = Math.max(lane.nextNonce, nonce + 1);
      log.info(revoke ? 'revoking the delegation' : 'delegating the wallet to the batch executor', {
        target,
        nonce,
        authorization_nonce: nonce + 1,
        tx_hash: signed.hash,
      });
      finishing = true;
      const outcome = finish(nonce, target, signed.hash);
      await ctx.recorder.sendGuarded(slot, rpc.bestBlock(), 'delegation send failed; the tick re-sends it');
      lane.emit({ type: 'submitted', kind: 'delegate', nonce, activityIds: [], hash: signed.hash });
      return await outcome;
    } catch (e) {
      const err = ctx.notRunning();
      return { ok: false, error: err ?? { code: 'TX_SEND_FAILED', message: errorText(e), retryable: true } };
    } finally {
      // Until `finish` owns it, the hold ends here.
      if (!finishing) release();
    }
  }

  function track(p: Promise<DelegateResult>): Promise<DelegateResult> {
    under = p;
    void p.finally(() => {
      if (under === p) under = undefined;
    });
    return p;
  }

  return {
    delegate(target, opts = {}) {
      const err = ctx.notRunning();
      if (err) return Promise.resolve({ ok: false, error: err });
      if (under) return Promise.resolve(refused('a delegation is already under way', true));
      return track(run(target, opts.drainTimeoutMs ?? DELEGATE_DRAIN_TIMEOUT_MS));
    },
    resume(rec) {
      const target = rec.authorization_list?.[0]?.address ?? ZERO_ADDRESS;
      lane.held = true;
      log.warn('a delegation transaction from before the restart is still open: new submits wait until it is mined', {
        nonce: rec.nonce,
        target,
      });
      track(finish(rec.nonce, target, rec.hashes[rec.hashes.length - 1] ?? '0x'));
    },
    current: () => under,
    onEvent(ev) {
      if ((ev.type === 'mined' || ev.type === 'failed') && waiting && ev.nonce === waiting.nonce) waiting.done(ev);
    },
    stop() {
      if (!waiting) return;
      const { nonce } = waiting;
      waiting.done({
        type: 'failed',
        kind: 'delegate',
        nonce,
        activityIds: [],
        error: { code: 'SHUTDOWN', message: 'the tx manager stopped before the delegation was mined', retryable: true },
      });
    },
  };
}
