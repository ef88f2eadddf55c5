/**
 * The start-up checks of `wcp run`, in order: the chain answers (retried with backoff while no RPC endpoint does),
 * its chain id is the configured one (fatal), the four contract addresses are one deployment (fatal, exit 3: the
 * field to fix and how, `chain/deployment.ts`), the wallet is a registered, active worker (fatal, exit 10), and — for
 * a claiming worker — the configuration can keep activities alive (`lifecycle/liveness.ts`, fatal).
 */
import { isWorkerActive } from '../chain/control-plane.ts';
import { checkDeployment } from '../chain/deployment.ts';
import type { RpcClient } from '../chain/transport.ts';
import type { WcpConfig } from '../config/load.ts';
import { backoffCeilingMs } from '../internal/backoff.ts';
import { errorText, isWcpError, WcpError } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import { checkLiveness } from '../lifecycle/liveness.ts';

/** Waits between start-up attempts while no RPC endpoint answers: 500 ms doubling up to 15 s. */
const STARTUP_RETRY = { baseMs: 500, maxMs: 15_000 };

export interface StartupCheckOptions {
  config: WcpConfig;
  log: Logger;
  /** How long to keep retrying an unreachable chain (default: forever). */
  retryMs?: number;
  /** False once a stop was asked for: the retries end with the last error. */
  stillStarting(): boolean;
}

/** Runs the checks; throws the first fatal one (a WcpError with its stable code). */
export async function startupChecks(r: RpcClient, o: StartupCheckOptions): Promise<void> {
  const { config, log } = o;
  const deadline = o.retryMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + o.retryMs;
  for (let attempt = 1; ; attempt++) {
    try {
      await r.checkChainIds();
      break;
    } catch (e) {
      if (!isWcpError(e, 'CHAIN_UNREACHABLE') || Date.now() > deadline || !o.stillStarting()) throw e;
      const wait = backoffCeilingMs(STARTUP_RETRY, attempt);
      log.warn('chain not reachable yet, retrying', { attempt, retry_in_ms: wait, error: errorText(e) });
      await new Promise((res) => setTimeout(res, wait));
    }
  }
  const eth = config.ethereum;
  const problems = await checkDeployment(r, eth, eth.chainId);
  if (problems.length > 0) {
    const first = problems[0]!;
    throw new WcpError('CONTRACT_INVALID', `${first.field}: ${first.detail}`, {
      details: problems.flatMap((p, i) => [...(i === 0 ? [] : [`${p.field}: ${p.detail}`]), `fix: ${p.fix}`]),
    });
  }
  const wallet = config.ethereum.walletAddress;
  const active = await isWorkerActive(r, config.ethereum.subnetControlPlane, wallet);
  if (!active) {
    throw new WcpError(
      'WORKER_NOT_ACTIVE',
      `wallet ${wallet} is not a registered, active worker on SubnetControlPlane ${config.ethereum.subnetControlPlane}`,
      { details: ['ask the subnet owner to register and activate this wallet, then start wcp again'] },
    );
  }
  log.info('worker is active on chain', { wallet });
  // Only a claiming worker sends heartbeats, so only its configuration must keep activities alive.
  if (config.scheduler.mode === 'claim')
    await checkLiveness(
      r,
      {
        taskQueue: config.ethereum.taskQueue,
        heartbeatIntervalMs: config.scheduler.heartbeatIntervalMs,
        receiptPollMs: config.txPolicy.receiptPollMs,
      },
      log,
    );
}
