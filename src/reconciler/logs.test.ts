import { describe, expect, test } from 'bun:test';
import { RpcError, type RpcTransport } from '../chain/transport.ts';
import { classifyLogsError, createLogFetcher, type LogFetcherOptions, rangeHint } from './logs.ts';

/** A fetcher's options for a test: small retry waits, the reconciler's other values. */
const fetcherOptions = (rpc: RpcTransport, over: Partial<LogFetcherOptions> = {}): LogFetcherOptions => ({
  rpc,
  initialChunkBlocks: 2_000,
  maxChunkBlocks: 10_000,
  growAfter: 3,
  maxRetries: 4,
  retryBackoff: { baseMs: 1, maxMs: 10 },
  ...over,
});

const rpcErr = (message: string, rpcCode?: number) =>
  new RpcError('rpc', 'eth_getLogs', message, rpcCode === undefined ? {} : { rpcCode });

describe('classifyLogsError', () => {
  test('provider texts', () => {
    expect(classifyLogsError(rpcErr('query returned more than 10000 results', -32005))).toBe('too_many_results');
    expect(
      classifyLogsError(
        rpcErr(
          'Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on the response size, or you can request any block range with a cap of 10K logs in the response. Based on your parameters, this block range should work: [0x1, 0x7d0]',
        ),
      ),
    ).toBe('too_many_results');
    expect(classifyLogsError(rpcErr('block range is too large', -32602))).toBe('range_too_large');
    expect(classifyLogsError(rpcErr('exceed maximum block range: 50000', -32000))).toBe('range_too_large');
    expect(classifyLogsError(rpcErr('range 1000000 exceeds limit of 10000', -32602))).toBe('range_too_large');
    expect(classifyLogsError(rpcErr('query timeout exceeded', -32005))).toBe('timeout');
    expect(classifyLogsError(new RpcError('transport', 'eth_getLogs', 'ECONNREFUSED'))).toBe('transport');
    expect(classifyLogsError(new RpcError('timeout', 'eth_getLogs', 'timed out'))).toBe('timeout');
    expect(
      classifyLogsError(new RpcError('http', 'eth_getLogs', 'HTTP 503', { httpStatus: 503, retryable: true })),
    ).toBe('transport');
    expect(classifyLogsError(rpcErr('invalid argument 0: hex string without 0x prefix', -32602))).toBe('fatal');
  });

  test('range hints', () => {
    expect(rangeHint('this block range should work: [0x1, 0x7d0]', 5000)).toBe(2000);
    expect(rangeHint('range 1000000 exceeds limit of 10000', 1_000_000)).toBe(10_000);
    expect(rangeHint('block range is too large', 100)).toBeUndefined();
  });
});

describe('createLogFetcher', () => {
  test('retries transport errors over the same range; a fatal error is thrown', async () => {
    const seen: string[] = [];
    let fail = 2;
    const rpc: RpcTransport = {
      async request<T>(_m: string, params: unknown[]): Promise<T> {
        const f = params[0] as { fromBlock: string; toBlock: string };
        seen.push(`${Number(f.fromBlock)}-${Number(f.toBlock)}`);
        if (fail-- > 0) throw new RpcError('transport', 'eth_getLogs', 'ECONNREFUSED');
        return [] as T;
      },
    };
    const f = createLogFetcher(fetcherOptions(rpc, { initialChunkBlocks: 10, sleep: async () => {} }));
    await f.getLogs({ address: '0x0', topics: [] }, 0, 24);
    expect(seen).toEqual(['0-9', '0-9', '0-9', '10-19', '20-24']);
    const bad: RpcTransport = { request: async () => Promise.reject(rpcErr('invalid params', -32602)) };
    await expect(createLogFetcher(fetcherOptions(bad)).getLogs({ address: '0x0', topics: [] }, 0, 5)).rejects.toThrow(
      'invalid params',
    );
  });
});
