/**
 * The batch mode decided once at start, after the lane's re-sync and before claims (`tx_policy.batch`):
 * - "off": per-call, whatever the wallet is delegated to.
 * - "auto": a delegation still open from before a restart is waited for first; then the wallet's code decides.
 *   Delegated to the pinned executor → batching on. Delegated to anything else → per-call, with a warning naming the
 *   foreign delegate: it is never re-delegated silently (`wcp key undelegate` revokes, then a restart delegates).
 *   Not delegated → if the chain accepts type-4 transactions (detected) and the executor is deployed at its pinned
 *   address with its pinned code, delegate now and batch; else per-call (an info line says why).
 * What the wallet is delegated to is logged at every start.
 */
import {
  acceptsType4,
  BATCH_EXECUTOR,
  type BatchMode,
  type Delegation,
  describeDelegation,
  executorDeployed,
  readDelegation,
} from '../chain/batch-executor.ts';
import { type RpcTransport, STEP_RETRY, withRetry } from '../chain/transport.ts';
import { errorText } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import type { TxManager } from '../txmgr/index.ts';

export interface BatchModeDeps {
  setting: 'auto' | 'off';
  rpc: RpcTransport;
  txm: Pick<TxManager, 'delegate' | 'delegation'>;
  wallet: string;
  chainId: number;
  log: Logger;
}

/** How long the start-up delegation waits for the lane to empty (held activities are not heartbeated meanwhile). */
export const STARTUP_DELEGATE_DRAIN_MS = 15_000;

/**
 * The start-up decision (see the file comment) and the delegation it left the wallet with (undefined: it could not
 * be read). Never throws: a chain that cannot be read leaves this run on the per-call path.
 */
export async function decideBatchMode(
  d: BatchModeDeps,
): Promise<{ batch: BatchMode; delegation: Delegation | undefined }> {
  try {
    return await decide(d);
  } catch (e) {
    d.log.warn('could not decide the batch mode: one transaction per call for this run', { error: errorText(e) });
    return { batch: { mode: 'per-call', reason: `undecided: ${errorText(e)}` }, delegation: undefined };
  }
}

async function decide(d: BatchModeDeps): Promise<{ batch: BatchMode; delegation: Delegation }> {
  const { rpc, log, wallet } = d;
  const resumed = d.txm.delegation();
  if (resumed) {
    const r = await resumed;
    if (!r.ok) log.warn('the delegation resumed after the restart failed', { error: r.error.message });
  }
  const read = () => withRetry(() => readDelegation(rpc, wallet), STEP_RETRY);
  let delegation = await read();
  log.info(`wallet delegated to: ${describeDelegation(delegation)}`, {
    wallet,
    delegation: delegation.kind,
    ...(delegation.kind === 'foreign' ? { delegate: delegation.delegate } : {}),
    batch_setting: d.setting,
  });
  const perCall = (reason: string): { batch: BatchMode; delegation: Delegation } => ({
    batch: { mode: 'per-call', reason },
    delegation,
  });
  if (d.setting === 'off') return perCall('tx_policy.batch = "off"');
  if (delegation.kind === 'foreign') {
    log.warn('the wallet is delegated to a contract that is not the pinned batch executor: batching is off for it', {
      wallet,
      delegate: delegation.delegate,
      pinned_executor: BATCH_EXECUTOR.address,
      what_to_do:
        'wcp never re-delegates a wallet silently. If that delegation is not needed any more, stop wcp, run `wcp key undelegate`, and start wcp again; or set tx_policy.batch = "off" to silence this',
    });
    return perCall(`the wallet is delegated to a foreign contract ${delegation.delegate}`);
  }
  if (delegation.kind === 'none') {
    const type4 = await withRetry(() => acceptsType4(rpc, wallet, d.chainId), STEP_RETRY);
    if (!type4.accepted) {
      log.info('the chain does not accept type-4 (EIP-7702) transactions: one transaction per call', {
        chain_id: d.chainId,
        detail: type4.reason,
      });
      return perCall(`the chain does not accept type-4 transactions (${type4.reason})`);
    }
    if (!(await withRetry(() => executorDeployed(rpc), STEP_RETRY))) {
      log.warn('the pinned batch executor is not deployed on this chain: one transaction per call', {
        chain_id: d.chainId,
        executor: BATCH_EXECUTOR.address,
        code_hash: BATCH_EXECUTOR.codeHash,
      });
      return perCall(`the batch executor is not deployed at ${BATCH_EXECUTOR.address} on chain ${d.chainId}`);
    }
    const r = await d.txm.delegate(BATCH_EXECUTOR.address, { drainTimeoutMs: STARTUP_DELEGATE_DRAIN_MS });
    delegation = await read();
    if (!r.ok || delegation.kind !== 'pinned') {
      const why = r.ok ? `the wallet reads as ${describeDelegation(delegation)} after delegating` : r.error.message;
      log.warn('delegating the wallet to the batch executor failed: one transaction per call', { error: why });
      return perCall(`delegation failed: ${why}`);
    }
  }
  log.info('batching lifecycle calls through the wallet (EIP-7702)', { executor: BATCH_EXECUTOR.address });
  return { batch: { mode: 'batch', executor: BATCH_EXECUTOR.address }, delegation };
}
