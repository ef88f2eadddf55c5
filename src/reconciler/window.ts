/**
 * The scan window's first block: the first block whose timestamp is >= head.timestamp - windowS ("the last
 * ~3 h by block timestamps"). Block timestamps never decrease, so the predicate `ts(n) >= target` is monotone
 * over block numbers: an estimate from the average block time, a galloping search to bracket the answer, then
 * a binary search. Never below `lowerBound` (default 0). Costs O(log window) header reads.
 */
import { type BlockHeader, getHeader } from '../chain/reads.ts';
import type { RpcTransport } from '../chain/transport.ts';

export type HeaderReader = (n: number) => Promise<BlockHeader>;

export function headerReader(rpc: RpcTransport): HeaderReader {
  const cache = new Map<number, BlockHeader>();
  return async (n) => {
    const hit = cache.get(n);
    if (hit) return hit;
    const h = await getHeader(rpc, n);
    if (cache.size > 256) cache.clear();
    cache.set(n, h);
    return h;
  };
}

export interface WindowStartInput {
  head: BlockHeader;
  windowS: number;
  /** A block known to be at or below the answer (e.g. the previous window start). Default 0. */
  lowerBound?: number;
}

export async function findWindowStart(read: HeaderReader, input: WindowStartInput): Promise<number> {
  const { head } = input;
  const target = head.timestamp - Math.max(0, input.windowS);
  const lo0 = Math.max(0, Math.min(input.lowerBound ?? 0, head.number));
  if (target <= 0) return lo0;
  const ts = async (n: number) => (n === head.number ? head.timestamp : (await read(n)).timestamp);
  if ((await ts(lo0)) >= target) return lo0;
  // Invariant from here: ts(lo) < target <= ts(hi)  (hi = head works because windowS >= 0).
  let lo = lo0;
  let hi = head.number;
  // Estimate from the average block time over a recent sample, then gallop outwards from the estimate.
  const sample = Math.min(head.number - lo, 1_000);
  if (sample > 0) {
    const past = await read(head.number - sample);
    const avg = Math.max((head.timestamp - past.timestamp) / sample, 1e-3);
    let guess = Math.round(head.number - input.windowS / avg);
    guess = Math.min(hi - 1, Math.max(lo + 1, guess));
    let step = Math.max(1, Math.ceil(sample / 100));
    if (guess > lo && guess < hi) {
      if ((await ts(guess)) >= target) {
        hi = guess;
        // Walk down until below target.
        for (;;) {
          const probe = Math.max(lo, hi - step);
          if (probe === lo) break;
          if ((await ts(probe)) >= target) {
            hi = probe;
            step *= 2;
          } else {
            lo = probe;
            break;
          }
        }
      } else {
        lo = guess;
        for (;;) {
          const probe = Math.min(hi, lo + step);
          if (probe === hi) break;
          if ((await ts(probe)) < target) {
            lo = probe;
            step *= 2;
          } else {
            hi = probe;
            break;
          }
        }
      }
    }
  }
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if ((await ts(mid)) >= target) hi = mid;
    else lo = mid;
  }
  return hi;
}
