/**
 * New-head push (`ethereum.ws_url`) against a real anvil's WebSocket endpoint: heads arrive in order, a poller
 * whose interval is a minute polls at once on a new block and finds the activity enqueued in it, an endpoint
 * that refuses the subscription or is not there leaves polling alone and is retried, and a dropped connection
 * comes back by itself.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Anvil, freePort, startAnvil } from '../scripts/lib/anvil.ts';
import { deployStack, enqueueActivities, type Stack } from '../scripts/lib/deploy.ts';
import { createHeadSubscription, headNumber, probeHeads } from '../src/chain/heads.ts';
import { createRpcTransport } from '../src/chain/transport.ts';
import { createLogger } from '../src/internal/logger.ts';
import type { PollerEvent } from '../src/poller/messages.ts';
import { createPoller } from '../src/poller/poller.ts';
import { until } from './support/wait.ts';

const quiet = createLogger('test', { write: () => {} });
const waitFor = (fn: () => boolean | Promise<boolean>, ms: number) => until(fn, Boolean, ms, fn.toString());
const fastRetry = { baseMs: 100, maxMs: 200, jitter: false };
let anvil: Anvil;
let stack: Stack;
const wsUrl = () => anvil.url.replace(/^http/, 'ws');

beforeAll(async () => {
  // Mining only on request: a block appears exactly when the test mines one.
  anvil = await startAnvil({ noMining: true });
  const mining = setInterval(() => void anvil.mine(1).catch(() => {}), 100);
  try {
    stack = await deployStack({ rpcUrl: anvil.url, deployerKey: anvil.accounts[0]!.privateKey });
  } finally {
    clearInterval(mining);
  }
}, 60_000);

afterAll(async () => {
  stack?.destroy();
  await anvil?.stop();
}, 60_000);

describe('new-head subscription', () => {
  test('each mined block is announced once, in order', async () => {
    const seen: number[] = [];
    const sub = createHeadSubscription({ url: wsUrl(), timeoutMs: 5000, logger: quiet, onHead: (n) => seen.push(n) });
    sub.start();
    try {
      await waitFor(() => sub.status().state === 'subscribed', 5000);
      const from = await anvil.blockNumber();
      for (let i = 0; i < 3; i++) await anvil.mine(1);
      await waitFor(() => seen.length >= 3, 5000);
      expect(seen).toEqual([from + 1, from + 2, from + 3]);
      expect(sub.status().heads).toBe(3);
    } finally {
      sub.stop();
    }
    expect(sub.status().state).toBe('stopped');
  });

  test('a notification of another subscription, a bad number or junk is ignored', () => {
    const note = (sub: string, number: unknown) =>
      JSON.stringify({ jsonrpc: '2.0', method: 'eth_subscription', params: { subscription: sub, result: { number } } });
    expect(headNumber(note('0xab', '0x10'), '0xab')).toBe(16);
    expect(headNumber(note('0xcd', '0x10'), '0xab')).toBeUndefined();
    expect(headNumber(note('0xab', 16), '0xab')).toBeUndefined();
    expect(headNumber(note('0xab', '0x'), '0xab')).toBeUndefined();
    expect(headNumber(note('0xab', '0x1ffffffffffffffff'), '0xab')).toBeUndefined();
    expect(headNumber('{not json', '0xab')).toBeUndefined();
    expect(headNumber(note('0xab', '0x10'), undefined)).toBeUndefined();
  });

  test('an endpoint that is not there, or refuses eth_subscribe, is retried; polling is not touched', async () => {
    // Nothing listens on this port.
    const gone = createHeadSubscription({
      url: `ws://127.0.0.1:${await freePort()}`,
      timeoutMs: 1000,
      logger: quiet,
      onHead: () => {},
      backoff: fastRetry,
    });
    // A WebSocket JSON-RPC endpoint that answers every eth_subscribe with an error (an HTTP-only provider would
    // refuse the upgrade; one without subscriptions answers like this).
    const refusing = Bun.serve({
      port: 0,
      hostname: '127.0.0.1',
      fetch: (req, server) => (server.upgrade(req) ? undefined : new Response('no', { status: 400 })),
      websocket: {
        message: (ws, msg) => {
          const { id } = JSON.parse(String(msg)) as { id: number };
          ws.send(JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32601, message: 'method not found' } }));
        },
      },
    });
    const refused = createHeadSubscription({
      url: `ws://127.0.0.1:${refusing.port}`,
      timeoutMs: 1000,
      logger: quiet,
      onHead: () => {},
      backoff: fastRetry,
    });
    // An HTTP server that refuses the upgrade.
    const plain: Server = createServer((_req, res) => res.writeHead(400).end());
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    const noUpgrade = createHeadSubscription({
      url: `ws://127.0.0.1:${(plain.address() as AddressInfo).port}`,
      timeoutMs: 1000,
      logger: quiet,
      onHead: () => {},
      backoff: fastRetry,
    });
    // The doctor's probe names the cause of each.
    expect(await probeHeads(wsUrl(), 2000, quiet)).toEqual({ ok: true });
    const refusedProbe = await probeHeads(`ws://127.0.0.1:${refusing.port}`, 2000, quiet);
    expect(refusedProbe.ok ? '' : refusedProbe.cause).toContain('eth_subscribe refused: method not found');
    const noUpgradeProbe = await probeHeads(`ws://127.0.0.1:${(plain.address() as AddressInfo).port}`, 2000, quiet);
    expect(noUpgradeProbe.ok).toBe(false);
    const subs = [gone, refused, noUpgrade];
    for (const s of subs) s.start();
    try {
      await waitFor(() => subs.every((s) => s.status().failures >= 2), 10_000);
      for (const s of subs) expect(s.status().state).not.toBe('subscribed');
    } finally {
      for (const s of subs) s.stop();
      refusing.stop(true);
      plain.close();
    }
  });

  test('a dropped connection comes back and heads flow again', async () => {
    // A relay in front of anvil's WebSocket that the test can cut.
    const upstreams = new Set<WebSocket>();
    const relay = Bun.serve<{ up?: WebSocket; queue: string[] }>({
      port: 0,
      hostname: '127.0.0.1',
      fetch: (req, server) =>
        server.upgrade(req, { data: { queue: [] } }) ? undefined : new Response('', { status: 400 }),
      websocket: {
        open(ws) {
          const up = new WebSocket(wsUrl());
          upstreams.add(up);
          ws.data.up = up;
          up.onopen = () => {
            for (const m of ws.data.queue.splice(0)) up.send(m);
          };
          up.onmessage = (ev) => ws.send(String(ev.data));
          up.onclose = () => ws.close();
        },
        message(ws, msg) {
          const up = ws.data.up;
          if (up?.readyState === WebSocket.OPEN) up.send(String(msg));
          else ws.data.queue.push(String(msg));
        },
        close(ws) {
          ws.data.up?.close();
        },
      },
    });
    const seen: number[] = [];
    const sub = createHeadSubscription({
      url: `ws://127.0.0.1:${relay.port}`,
      timeoutMs: 2000,
      logger: quiet,
      onHead: (n) => seen.push(n),
      backoff: fastRetry,
    });
    sub.start();
    try {
      await waitFor(() => sub.status().state === 'subscribed', 5000);
      await anvil.mine(1);
      await waitFor(() => seen.length >= 1, 5000);
      for (const up of upstreams) up.close();
      await waitFor(() => sub.status().failures >= 1, 5000);
      await waitFor(() => sub.status().state === 'subscribed', 5000);
      const before = seen.length;
      await anvil.mine(1);
      await waitFor(() => seen.length > before, 5000);
      expect(seen).toEqual([...seen].sort((a, b) => a - b));
    } finally {
      sub.stop();
      relay.stop(true);
    }
  });
});

describe('poller woken by new heads', () => {
  test('with a one-minute poll interval, an activity enqueued in a new block is found at once', async () => {
    const rpc = createRpcTransport({
      urls: [anvil.url],
      chainId: anvil.chainId,
      timeoutMs: 5000,
      maxLagBlocks: 1000,
      endpointBackoffMs: 100,
      endpointBackoffMaxMs: 1000,
    });
    const events: PollerEvent[] = [];
    const poller = createPoller({
      rpc,
      addresses: { taskQueue: stack.addresses.taskQueue, multicall3: stack.addresses.multicall3 },
      queueName: 'heads-q',
      pollBatch: 4,
      pollIntervalMs: 60_000,
      logger: quiet,
      emit: (ev) => events.push(ev),
    });
    const sub = createHeadSubscription({
      url: wsUrl(),
      timeoutMs: 5000,
      logger: quiet,
      onHead: () => poller.newHead(),
    });
    poller.start();
    sub.start();
    try {
      await waitFor(() => sub.status().state === 'subscribed' && poller.status().polls >= 1, 5000);
      const polls = poller.status().polls;
      // The enqueue is sent while mining is off; its block is mined below: that head must wake the poller.
      const enqueued = enqueueActivities(stack, { queue: 'heads-q', count: 1, activityType: 't', inputRef: 'json:{}' });
      await waitFor(
        async () => Number(BigInt(await anvil.rpc<string>('eth_getBlockTransactionCountByNumber', ['pending']))) > 0,
        5000,
      );
      await anvil.mine(1);
      const [id] = await enqueued;
      await waitFor(
        () => events.some((e) => e.type === 'claimJobs' && e.jobs.some((j) => j.activity_id === String(id))),
        3000,
      );
      expect(poller.status().polls).toBeGreaterThan(polls);
    } finally {
      sub.stop();
      await poller.stop();
    }
  }, 30_000);
});
