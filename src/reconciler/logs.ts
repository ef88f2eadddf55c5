/**
 * Chunked `eth_getLogs` with an adaptive block range.
 *
 * Invariant: every block of [fromBlock, toBlock] is queried exactly once by a successful request, in order,
 * so no block is skipped and none is reported twice (a failed request is retried over the same start block).
 *
 * Adaptation: the range starts at `initialChunkBlocks`; it is halved when the node says the answer is too big
 * ("query returned more than 10000 results", "Log response size exceeded"), the range too large ("block range
 * is too large", "exceed maximum block range", "range 5000 exceeds limit of 2000", -32602 range errors) or the
 * query timed out; a limit the node names (a number or an Alchemy-style `[0x.., 0x..]` hint) becomes a ceiling
 * the range never grows past again. After `growAfter` successes in a row it grows by 25 % (up to the ceiling /
 * `maxChunkBlocks`). Transport errors (connection refused, 5xx, 429) are retried over the same range with the
 * shared backoff, at most `maxRetries` times in a row, then thrown (the caller backs off).
 */
import { RpcError, type RpcTransport, shouldRetry, toHex } from '../chain/transport.ts';
import { type BackoffPolicy, backoffDelayMs } from '../internal/backoff.ts';
import { WcpError } from '../internal/errors.ts';

export interface LogFilter {
  address: string | string[];
  /** Per position: a topic, an OR-list, or null (any). */
  topics: Array<string | string[] | null>;
}

export interface RawLog {
  address: string;
  topics: string[];
  data: string;
  blockNumber: number;
  blockHash: string;
  transactionHash: string;
  logIndex: number;
}

export type LogsErrorKind = 'too_many_results' | 'range_too_large' | 'timeout' | 'transport' | 'fatal';

const TOO_MANY =
  /more than \d+ results|too many (results|logs)|returns too many|response size|response is too (big|large)|result(s)? (limit|set too large)|exceeds? (the )?max(imum)? (number of )?(results|logs)|logs? (limit|count) exceeded|query returned more/i;
const RANGE =
  /block range|range (is )?too (large|wide|big)|range \d+ (exceeds|is bigger)|exceeds? (the )?max(imum)? (block )?range|max(imum)? block range|maxblockrange|range_too_large|block count|blocks? (limit|span)|narrow your filter|limited to \d+|range limit|query range/i;
const TIMEOUT = /time(d)? ?out|timeout exceeded|query duration|took too long|deadline/i;

/** Classifies an eth_getLogs failure by kind, RPC code and message. */
export function classifyLogsError(e: unknown): LogsErrorKind {
  if (e instanceof RpcError) {
    if (e.kind === 'timeout') return 'timeout';
    if (e.kind === 'transport') return 'transport';
    const msg = e.message;
    if (TOO_MANY.test(msg)) return 'too_many_results';
    if (RANGE.test(msg)) return 'range_too_large';
    if (TIMEOUT.test(msg)) return 'timeout';
    if (e.kind === 'http') {
      if (e.httpStatus === 504 || e.httpStatus === 408) return 'timeout';
      if (e.httpStatus === 413) return 'too_many_results';
      return shouldRetry(e) ? 'transport' : 'fatal';
    }
    // -32005 is "limit exceeded" on Infura-style nodes (results or rate); the message did not say which.
    if (e.rpcCode === -32005) return 'too_many_results';
    return shouldRetry(e) ? 'transport' : 'fatal';
  }
  return 'fatal';
}

/** A block-range limit named in a node's error message, if any. */
export function rangeHint(message: string, requested: number): number | undefined {
  const m = /\[\s*(0x[0-9a-f]+)\s*,\s*(0x[0-9a-f]+)\s*\]/i.exec(message);
  if (m?.[1] && m[2]) {
    const n = Number(BigInt(m[2]) - BigInt(m[1])) + 1;
    if (n >= 1 && n < requested) return n;
  }
  const k =
    /(?:limit(?:ed)?(?: of| to| is)?|max(?:imum)?(?: block)?(?: range)?(?: of| is)?|range limit)\s*:?\s*(\d{1,9})/i.exec(
      message,
    );
  if (k?.[1]) {
    const n = Number(k[1]);
    if (n >= 1 && n < requested) return n;
  }
  return undefined;
}

/** Built by `logFetcherOptions` (`options.ts`) for the reconciler; every field but the seams is required. */
export interface LogFetcherOptions {
  rpc: RpcTransport;
  /** Range of the first request (`reconciler.initial_chunk_blocks`). */
  initialChunkBlocks: number;
  /** Upper bound the range may grow to (`reconciler.max_chunk_blocks`). */
  maxChunkBlocks: number;
  /** Consecutive full-size successes before growing. */
  growAfter: number;
  /** Transport retries of one range in a row before throwing. */
  maxRetries: number;
  retryBackoff: BackoffPolicy;
  /** Seam for tests. */
  sleep?: (ms: number) => Promise<void>;
  /** Called after each successful chunk (metrics, tests). */
  onChunk?: (c: { fromBlock: number; toBlock: number; logs: number }) => void;
  /** Called when the range adapts. */
  onAdapt?: (a: { from: number; to: number; reason: LogsErrorKind | 'grow' }) => void;
}

export interface LogFetcher {
  /**
   * All logs matching `filter` in [fromBlock, toBlock], ordered by (block, logIndex). `onChunk` receives each
   * chunk's logs as soon as they are in (so a caller can make progress before a later chunk fails).
   */
  getLogs(
    filter: LogFilter,
    fromBlock: number,
    toBlock: number,
    onChunk?: (logs: RawLog[], to: number) => void | Promise<void>,
  ): Promise<RawLog[]>;
  stats(): { requests: number; shrinks: number; grows: number; retries: number };
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function createLogFetcher(opts: LogFetcherOptions): LogFetcher {
  let ceiling = Math.max(1, opts.maxChunkBlocks);
  let size = Math.min(ceiling, Math.max(1, opts.initialChunkBlocks));
  const { growAfter, maxRetries } = opts;
  const sleep = opts.sleep ?? defaultSleep;
  let streak = 0;
  const st = { requests: 0, shrinks: 0, grows: 0, retries: 0 };

  function adapt(to: number, reason: LogsErrorKind | 'grow') {
    const from = size;
    size = to;
    if (from !== to) opts.onAdapt?.({ from, to, reason });
  }

  async function getLogs(
    filter: LogFilter,
    fromBlock: number,
    toBlock: number,
    onChunk?: (logs: RawLog[], to: number) => void | Promise<void>,
  ): Promise<RawLog[]> {
    const all: RawLog[] = [];
    let cur = fromBlock;
    let retries = 0;
    while (cur <= toBlock) {
      const end = Math.min(toBlock, cur + size - 1);
      const span = end - cur + 1;
      let raw: Array<Record<string, string>>;
      try {
        st.requests++;
        raw = await opts.rpc.request<Array<Record<string, string>>>('eth_getLogs', [
          { address: filter.address, topics: filter.topics, fromBlock: toHex(cur), toBlock: toHex(end) },
        ]);
        if (!Array.isArray(raw)) throw new WcpError('CHAIN_BAD_DATA', 'eth_getLogs did not answer an array');
      } catch (e) {
        const kind = classifyLogsError(e);
        if (kind === 'too_many_results' || kind === 'range_too_large' || kind === 'timeout') {
          streak = 0;
          if (span > 1) {
            st.shrinks++;
            const hint = kind !== 'timeout' && e instanceof Error ? rangeHint(e.message, span) : undefined;
            // A range limit is a property of the node: never grow past it again. Too many results depends
            // on event density, so it only shrinks the current range.
            if (kind === 'range_too_large') ceiling = Math.min(ceiling, hint ?? span - 1);
            adapt(hint ?? Math.max(1, Math.floor(span / 2)), kind);
            continue;
          }
          if (kind !== 'timeout') {
            throw new WcpError(
              'CHAIN_BAD_DATA',
              `eth_getLogs cannot answer even one block (${cur}): ${(e as Error).message}`,
              {
                cause: e,
              },
            );
          }
          // A one-block query that times out: treat like a transport failure below.
        } else if (kind === 'fatal') {
          throw e;
        }
        if (retries >= maxRetries) throw e;
        retries++;
        st.retries++;
        await sleep(backoffDelayMs(opts.retryBackoff, retries));
        continue;
      }
      retries = 0;
      const logs = raw
        .filter((l) => !(l as { removed?: unknown }).removed)
        .map(normalizeLog)
        .filter((l) => l.blockNumber >= cur && l.blockNumber <= end)
        .sort((a, b) => a.blockNumber - b.blockNumber || a.logIndex - b.logIndex);
      for (const l of logs) all.push(l);
      opts.onChunk?.({ fromBlock: cur, toBlock: end, logs: logs.length });
      if (onChunk) await onChunk(logs, end);
      cur = end + 1;
      // Grow back gently, only after a run of full-size successes.
      if (span === size && ++streak >= growAfter && size < ceiling) {
        streak = 0;
        st.grows++;
        adapt(Math.min(ceiling, Math.max(size + 1, Math.floor(size * 1.25))), 'grow');
      }
    }
    return all;
  }

  return { getLogs, stats: () => ({ ...st }) };
}

function normalizeLog(l: Record<string, unknown>): RawLog {
  return {
    address: String(l.address).toLowerCase(),
    topics: (l.topics as string[]).map((t) => t.toLowerCase()),
    data: String(l.data),
    blockNumber: Number(BigInt(l.blockNumber as string)),
    blockHash: String(l.blockHash).toLowerCase(),
    transactionHash: String(l.transactionHash).toLowerCase(),
    logIndex: Number(BigInt(l.logIndex as string)),
  };
}
