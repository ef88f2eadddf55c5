/**
 * The transport's options, compiled once from the validated config. The config schema (`src/config/schema.ts`)
 * holds every default; the endpoint backoff is not configuration and is a named constant here.
 */
import type { WcpConfig } from '../config/load.ts';
import type { RpcTransportOptions } from './transport.ts';

/** First skip of a failing endpoint; doubles per consecutive failure. */
export const ENDPOINT_BACKOFF_MS = 500;
/** Longest skip of a failing endpoint. */
export const ENDPOINT_BACKOFF_MAX_MS = 30_000;

/** The transport's options from the config: every endpoint, the chain id, the call timeout and the lag limit. */
export function rpcTransportOptions(config: WcpConfig): RpcTransportOptions {
  return {
    urls: [...config.ethereum.rpcUrls],
    chainId: config.ethereum.chainId,
    timeoutMs: config.ethereum.requestTimeoutMs,
    maxLagBlocks: config.txPolicy.maxLagBlocks,
    endpointBackoffMs: ENDPOINT_BACKOFF_MS,
    endpointBackoffMaxMs: ENDPOINT_BACKOFF_MAX_MS,
  };
}
