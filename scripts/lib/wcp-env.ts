/**
 * The environment a test or benchmark gives the compiled binary: the `local` config profile with metrics off,
 * then the chain, wallet and queue it should use, then settings layers (short intervals, executor endpoint…)
 * where a later layer wins.
 */

/** Who the daemon is and which chain and queue it works on; each left out keeps the config's value. */
export interface WcpEnvOptions {
  rpcUrl?: string;
  /** The wallet key; the wallet address is then derived from it (a configured address is cleared). */
  privateKey?: string;
  queue?: string;
}

/** Env vars for `wcp` (ENVIRONMENT=local, metrics off, `o`, then each of `layers` in order, the last winning). */
export function wcpEnv(o: WcpEnvOptions, ...layers: Array<Record<string, string>>): Record<string, string> {
  const env: Record<string, string> = { ENVIRONMENT: 'local', WCP__METRICS__ENABLED: 'false' };
  if (o.rpcUrl !== undefined) env.WCP__ETHEREUM__RPC_URL = o.rpcUrl;
  if (o.privateKey !== undefined) {
    env.WCP__ETHEREUM__WALLET_PRIVATE_KEY = o.privateKey;
    env.WCP__ETHEREUM__WALLET_ADDRESS = '';
  }
  if (o.queue !== undefined) env.WCP__SCHEDULER__QUEUE_NAME = o.queue;
  return Object.assign(env, ...layers);
}
