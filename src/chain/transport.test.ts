/**
 * The transport's failover, lag and broadcast rules against fake JSON-RPC endpoints (small Bun HTTP servers,
 * named as fakes: each answers from a table and records what it was asked).
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { isWcpError } from '../internal/errors.ts';
import { createRpcTransport, RpcError, type RpcTransportOptions } from './transport.ts';

type Answer = { result: unknown } | { error: { code: number; message: string } } | { status: number };

interface FakeNode {
  url: string;
  calls: string[];
  /** method → answer; unlisted methods answer `0x1`. */
  answers: Record<string, Answer>;
}

const servers: Array<{ stop(force?: boolean): void }> = [];
afterAll(() => {
  for (const s of servers) s.stop(true);
});

function fakeNode(chainId: number, head: number, answers: Record<string, Answer> = {}): FakeNode {
  const node: FakeNode = {
    url: '',
    calls: [],
    answers: {
      eth_chainId: { result: `0x${chainId.toString(16)}` },
      eth_blockNumber: { result: `0x${head.toString(16)}` },
      ...answers,
    },
  };
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(req) {
      const body = (await req.json()) as { id: number; method: string };
      node.calls.push(body.method);
      const a = node.answers[body.method] ?? { result: '0x1' };
      if ('status' in a) return new Response('down', { status: a.status });
      return Response.json({ jsonrpc: '2.0', id: body.id, ...a });
    },
  });
  servers.push(server);
  // A path and user info stand in for an API key: they must never show in status or errors.
  node.url = `http://user:secret@127.0.0.1:${server.port}/v3/APIKEY123`;
  return node;
}

const opts = (urls: string[], over: Partial<RpcTransportOptions> = {}): RpcTransportOptions => ({
  urls,
  chainId: 7,
  timeoutMs: 2_000,
  maxLagBlocks: 5,
  endpointBackoffMs: 60_000,
  endpointBackoffMaxMs: 60_000,
  ...over,
});

describe('createRpcTransport', () => {
  test('a dead endpoint is failed over and put in backoff; status shows it without credentials', async () => {
    const live = fakeNode(7, 100);
    const rpc = createRpcTransport(opts(['http://127.0.0.1:9/', live.url]));
    expect(await rpc.request('eth_getBalance', [])).toBe('0x1');
    const [dead, ok] = rpc.status();
    expect(dead).toMatchObject({ up: false, consecutiveFailures: 1, errors: { transport: 1 } });
    expect(ok).toMatchObject({ up: true, chainIdOk: true });
    expect(JSON.stringify(rpc.status())).not.toMatch(/secret|APIKEY|user/);
    expect(ok?.url).toMatch(/^#1 http:\/\/127\.0\.0\.1:\d+$/);
  });

  test("a JSON-RPC error is the node's answer: thrown at once, no failover; a rate limit fails over", async () => {
    const reverted = { eth_call: { error: { code: 3, message: 'execution reverted' } } };
    const a = fakeNode(7, 100, reverted);
    const b = fakeNode(7, 100, reverted);
    const rpc = createRpcTransport(opts([a.url, b.url]));
    await rpc.refreshHeads();
    const err = await rpc.request('eth_call', []).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).rpcCode).toBe(3);
    expect([...a.calls, ...b.calls].filter((m) => m === 'eth_call')).toHaveLength(1);

    a.answers.eth_call = { error: { code: -32005, message: 'rate limit exceeded' } };
    b.answers.eth_call = { error: { code: -32005, message: 'rate limit exceeded' } };
    await rpc.request('eth_call', []).catch(() => undefined);
    expect([...a.calls, ...b.calls].filter((m) => m === 'eth_call')).toHaveLength(3);
  });

  test('reads go to the freshest endpoint; one behind (here beyond maxLagBlocks) only when nothing better answers', async () => {
    const behind = fakeNode(7, 90);
    const fresh = fakeNode(7, 100);
    const rpc = createRpcTransport(opts([behind.url, fresh.url]));
    expect(await rpc.refreshHeads()).toBe(100);
    expect(rpc.status().map((s) => s.lagBlocks)).toEqual([10, 0]);
    await rpc.request('eth_getTransactionReceipt', []);
    expect(behind.calls).not.toContain('eth_getTransactionReceipt');
    expect(fresh.calls).toContain('eth_getTransactionReceipt');
    fresh.answers.eth_getTransactionReceipt = { status: 503 };
    await rpc.request('eth_getTransactionReceipt', []);
    expect(behind.calls).toContain('eth_getTransactionReceipt');
  });

  test('broadcast reaches every endpoint with each answer apart; another chain is never used', async () => {
    const a = fakeNode(7, 100, { eth_sendRawTransaction: { result: '0xhash' } });
    const b = fakeNode(7, 100, { eth_sendRawTransaction: { error: { code: -32000, message: 'already known' } } });
    const other = fakeNode(8, 100);
    const rpc = createRpcTransport(opts([a.url, b.url, other.url]));
    await rpc.checkChainIds();
    const out = await rpc.broadcast('eth_sendRawTransaction', ['0x00']);
    expect(out.map((o) => o.ok)).toEqual([true, false]);
    expect(other.calls).toEqual(['eth_chainId']);
    const wrong = createRpcTransport(opts([other.url]));
    const err = await wrong.checkChainIds().catch((e: unknown) => e);
    expect(isWcpError(err, 'CHAIN_ID_MISMATCH')).toBe(true);
  });
});
