/**
 * `wcp key undelegate [--config FILE]`: revokes the wallet's EIP-7702 delegation (an authorization to the zero
 * address, in a type-4 transaction to itself) through the store's nonce lane, as the daemon would send it: the lane
 * is re-synced first, the revocation is recorded before it is broadcast, and the wallet's code is checked after. It
 * takes the store's lock, so it refuses while the daemon runs (two senders on one lane would reuse nonces).
 */
import { describeDelegation, readDelegation, ZERO_ADDRESS } from '../chain/batch-executor.ts';
import { rpcTransportOptions } from '../chain/options.ts';
import { createRpcTransport } from '../chain/transport.ts';
import type { WcpConfig } from '../config/load.ts';
import { isWcpError, WcpError } from '../internal/errors.ts';
import { createLogger } from '../internal/logger.ts';
import { acquireStoreLock } from '../store/lock.ts';
import { ensureStoreDir, openStore } from '../store/store.ts';
import { createTxManager } from '../txmgr/index.ts';
import { txPolicy } from '../txmgr/options.ts';

/** Takes the store's lock, or explains that the daemon must be stopped first. */
function lockStore(path: string): ReturnType<typeof acquireStoreLock> {
  try {
    return acquireStoreLock(path);
  } catch (e) {
    if (!isWcpError(e, 'STORE_LOCKED')) throw e;
    throw new WcpError('STORE_LOCKED', `${e.message}: wcp key undelegate sends through that store's nonce lane`, {
      details: [
        'stop the daemon first (SIGTERM drains it), run `wcp key undelegate` again, then start the daemon: with tx_policy.batch = "auto" it delegates the wallet to its pinned executor again at start',
      ],
    });
  }
}

/** Revokes the delegation; resolves to the line to print. Throws a WcpError when the revocation failed. */
export async function undelegate(config: WcpConfig): Promise<string> {
  const wallet = config.ethereum.walletAddress;
  ensureStoreDir(config.store.path);
  const lock = lockStore(config.store.path);
  const log = createLogger('undelegate', { level: config.log.level === 'debug' ? 'debug' : 'warn' });
  const store = openStore({ path: config.store.path, logger: log.child('store') });
  const rpc = createRpcTransport(rpcTransportOptions(config), { logger: log.child('rpc') });
  const txm = createTxManager({
    store,
    rpc,
    chainId: config.ethereum.chainId,
    privateKey: config.ethereum.privateKey.reveal(),
    policy: txPolicy(config),
    logger: log.child('txmgr'),
    onEvent: () => {},
  });
  try {
    await txm.start();
    // A delegation left open by the daemon (killed mid-way) is finished first.
    await txm.delegation();
    const before = await readDelegation(rpc, wallet);
    if (before.kind === 'none') return `${wallet} is not delegated: nothing to revoke (no transaction sent)`;
    const r = await txm.delegate(ZERO_ADDRESS);
    if (!r.ok)
      throw new WcpError(r.error.code, `revoking the delegation of ${wallet} failed: ${r.error.message}`, {
        retryable: r.error.retryable,
      });
    return `${wallet} was delegated to ${describeDelegation(before)}; revoked by ${r.hash} (nonce ${r.nonce}): its code is empty again`;
  } finally {
    await txm.stop().catch(() => {});
    await store.close().catch(() => {});
    lock.release();
  }
}
