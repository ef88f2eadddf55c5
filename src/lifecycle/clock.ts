/**
 * The chain clock: chain time in seconds, from the latest block's timestamp, moving with the wall clock between
 * blocks. Expiry and heartbeat deadlines are chain times.
 *
 * The skew (chain − wall) is taken when a new block is first seen, which is always some time after the block was
 * made (a read at most once a second, whole-second timestamps): each sample runs behind. The clock takes the
 * largest of the last `SKEW_SAMPLES` samples, the one seen soonest after its block, so heartbeats are not sent up
 * to a second late by a stale reading.
 */
import { getHeader } from '../chain/reads.ts';
import type { RpcTransport } from '../chain/transport.ts';
import { CLOCK_REFRESH_MS } from './options.ts';

/** New blocks whose skew the clock keeps (the largest wins). */
const SKEW_SAMPLES = 8;

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
  const samples: number[] = [];
  let lastBlock = -1;
  let lastReadMs = 0;
  /** The read under way: the heartbeat and main loops both refresh, one read serves both. */
  let reading: Promise<void> | null = null;
  async function read(): Promise<void> {
    try {
      const b = await getHeader(rpc, 'latest');
      lastReadMs = now();
      if (b.number !== lastBlock) {
        // A block older than the last (a lagging node, a reorg) is no sample of "just made".
        if (b.number > lastBlock) {
          samples.push(b.timestamp - now() / 1000);
          if (samples.length > SKEW_SAMPLES) samples.shift();
          skewS = Math.max(...samples);
        }
        lastBlock = b.number;
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
