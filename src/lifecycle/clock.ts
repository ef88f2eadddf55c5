/**
 * The chain clock: chain time in seconds, from the latest block's timestamp, moving with the wall clock between
 * blocks (the skew is taken when a new block is first seen). Expiry and heartbeat deadlines are chain times.
 */
import { getHeader } from '../chain/reads.ts';
import type { RpcTransport } from '../chain/transport.ts';
import { CLOCK_REFRESH_MS } from './options.ts';

export interface ChainClock {
  /** Reads the latest header, at most once per `CLOCK_REFRESH_MS` (concurrent callers share one read). */
  refresh(): Promise<void>;
  /** A block has been read: before that, expiry and heartbeats wait (wall time is not chain time). */
  known(): boolean;
  /** Chain time now, seconds: never before the latest block's timestamp. */
  nowS(): number;
  /** Chain time minus wall time, seconds, as of the last new block (0 before one). */
  skewS(): number;
}

/** A clock that reads headers from `rpc`; `now` is the wall clock in ms. */
export function createChainClock(deps: { rpc: RpcTransport; now: () => number }): ChainClock {
  const { rpc, now } = deps;
  let blockTimeS = 0;
  let skewS = 0;
  let lastBlock = -1;
  let lastReadMs = 0;
  /** The read under way: the heartbeat and main loops both refresh, one read serves both. */
  let reading: Promise<void> | null = null;
  async function read(): Promise<void> {
    try {
      const b = await getHeader(rpc, 'latest');
      lastReadMs = now();
      if (b.number !== lastBlock) {
        lastBlock = b.number;
        skewS = b.timestamp - now() / 1000;
      }
      blockTimeS = b.timestamp;
    } finally {
      reading = null;
    }
  }
  return {
    async refresh() {
      if (now() - lastReadMs < CLOCK_REFRESH_MS) return;
      reading ??= read();
      await reading;
    },
    known: () => blockTimeS !== 0,
    nowS: () => Math.max(blockTimeS, now() / 1000 + skewS),
    skewS: () => skewS,
  };
}
