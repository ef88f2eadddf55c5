/**
 * The reconciler against a real anvil node running the reference contracts (and real LMDB where the store is
 * used). A small node:http JSON-RPC proxy in front of anvil plays the provider limits ("query returned more than
 * 10000 results", "block range is too large"), slowness and an outage.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import type { Contract } from 'ethers';
import { type Anvil, freePort, startAnvil } from '../scripts/lib/anvil.ts';
import {
  deployStack,
  enqueueActivities,
  laneSigner,
  registerWorker,
  type Stack,
  startWorkflows,
} from '../scripts/lib/deploy.ts';
import { createLogger } from '../src/internal/logger.ts';
import type { ActivityFact } from '../src/chain/facts.ts';
import { ENDPOINT_BACKOFF_MAX_MS, ENDPOINT_BACKOFF_MS } from '../src/chain/options.ts';
import { getHeader } from '../src/chain/reads.ts';
import { queueKeyTopic, TOPICS } from '../src/chain/topics.ts';
import { createRpcTransport, type RpcTransport } from '../src/chain/transport.ts';
import { planRepair, readLocal, reconcileFacts } from '../src/lifecycle/repair.ts';
import { createFollower } from '../src/reconciler/follower.ts';
import { createLogFetcher, type LogFetcherOptions, type RawLog } from '../src/reconciler/logs.ts';
import type { ReconcilerEvent, ReconcilerOptions } from '../src/reconciler/messages.ts';
import { logFetcherOptions, REORG_DEPTH } from '../src/reconciler/options.ts';
import { createScanner } from '../src/reconciler/scanner.ts';
import { findWindowStart, headerReader } from '../src/reconciler/window.ts';
import { runReconcilerWorker } from '../src/reconciler/worker.ts';
import { doneKey, inflightKey } from '../src/store/keys.ts';
import { DoneSchema, InflightSchema } from '../src/store/records.ts';
import { openStore, type Store } from '../src/store/store.ts';
import { untilTrue } from '../src/internal/testing/until.ts';

const quiet = createLogger('test', { write: () => {} });
let anvil: Anvil;
let stack: Stack;
let workerKey: string;
let workerAddr: string;
let otherKey: string;

beforeAll(async () => {
  anvil = await startAnvil();
  stack = await deployStack({ rpcUrl: anvil.url, deployerKey: anvil.accounts[0]!.privateKey });
  workerKey = anvil.accounts[1]!.privateKey;
  workerAddr = anvil.accounts[1]!.address;
  otherKey = anvil.accounts[2]!.privateKey;
  await registerWorker(stack, workerAddr, 100);
  await registerWorker(stack, anvil.accounts[2]!.address, 100);
}, 30_000);

afterAll(async () => {
  stack?.destroy();
  await anvil?.stop();
}, 60_000);

// ------------------------------------------------------------------------------------------------ helpers

interface Proxy {
  url: string;
  requests: Array<{ method: string; params: unknown[] }>;
  /** eth_getLogs ranges wider than this get an error. */
  maxRange: number;
  /** Which error to answer: alternates between the two when 'both'. */
  errorMode: 'results' | 'range' | 'both';
  delayMs: number;
  /** Runs before a request is forwarded (e.g. mine something while the scan is in flight). */
  onRequest?: ((method: string) => Promise<void>) | undefined;
  stop(): Promise<void>;
  start(): Promise<void>;
}

async function startProxy(target: string): Promise<Proxy> {
  const port = await freePort();
  let server: Server | undefined;
  let flip = false;
  const p: Proxy = {
    url: `http://127.0.0.1:${port}`,
    requests: [],
    maxRange: Number.POSITIVE_INFINITY,
    errorMode: 'both',
    delayMs: 0,
    async stop() {
      const s = server;
      server = undefined;
      if (!s) return;
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    },
    async start() {
      const s = createServer(handle);
      await new Promise<void>((r) => s.listen(port, '127.0.0.1', () => r()));
      server = s;
    },
  };
  async function handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
      id: number;
      method: string;
      params: unknown[];
    };
    p.requests.push({ method: body.method, params: body.params });
    if (p.delayMs > 0) await new Promise((r) => setTimeout(r, p.delayMs));
    if (p.onRequest) await p.onRequest(body.method);
    if (body.method === 'eth_getLogs') {
      const f = body.params[0] as { fromBlock: string; toBlock: string };
      const span = Number(BigInt(f.toBlock) - BigInt(f.fromBlock)) + 1;
      if (span > p.maxRange) {
        flip = !flip;
        const kind = p.errorMode === 'both' ? (flip ? 'results' : 'range') : p.errorMode;
        const error =
          kind === 'results'
            ? { code: -32005, message: 'query returned more than 10000 results' }
            : { code: -32602, message: `block range is too large` };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: body.id, error }));
        return;
      }
    }
    try {
      const up = await fetch(target, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      res.writeHead(up.status, { 'content-type': 'application/json' });
      res.end(await up.text());
    } catch {
      res.writeHead(502);
      res.end();
    }
  }
  await p.start();
  return p;
}

async function claim(key: string, ids: bigint[]) {
  const signer = laneSigner(key, stack.provider);
  const tq = stack.contracts.taskQueue.connect(signer) as Contract;
  for (const id of ids) await (await tq.getFunction('claimActivity')(id)).wait();
  return tq;
}

function addrs() {
  return {
    taskQueue: stack.addresses.taskQueue,
    workflowEngine: stack.addresses.workflowEngine,
    multicall3: stack.addresses.multicall3,
  };
}

/** Transport options for one endpoint, with a short timeout. */
function transport(url: string) {
  return createRpcTransport({
    urls: [url],
    chainId: anvil.chainId,
    timeoutMs: 2_000,
    maxLagBlocks: 5,
    endpointBackoffMs: ENDPOINT_BACKOFF_MS,
    endpointBackoffMaxMs: ENDPOINT_BACKOFF_MAX_MS,
  });
}

/** The reconciler's options as `reconcilerOptions` builds them from a config, made fast for tests. */
function options(url: string, over: Partial<ReconcilerOptions> = {}): ReconcilerOptions {
  const base: ReconcilerOptions = {
    rpc: {
      urls: [url],
      chainId: anvil.chainId,
      timeoutMs: 2_000,
      maxLagBlocks: 5,
      endpointBackoffMs: ENDPOINT_BACKOFF_MS,
      endpointBackoffMaxMs: ENDPOINT_BACKOFF_MAX_MS,
    },
    ...addrs(),
    wallet: workerAddr,
    queueName: 'q',
    windowS: 3 * 3600,
    followIntervalMs: 50,
    periodMs: 60_000,
    initialChunkBlocks: 2000,
    maxChunkBlocks: 10_000,
    localIds: [],
    followMaxBlocks: 10_000,
    filterClaimable: true,
    includeHeartbeats: true,
    reorgDepth: REORG_DEPTH,
    backoffMinMs: 50,
    backoffMaxMs: 400,
  };
  return { ...base, ...over };
}

/** The log fetcher the reconciler worker builds, on `rpc`. */
/** A scanner for the worker wallet over a 3 h window. */
function ourScanner(rpc: RpcTransport, reorgDepth = REORG_DEPTH) {
  return createScanner({
    rpc,
    logs: fetcher(rpc),
    ...addrs(),
    wallet: workerAddr,
    windowS: 3 * 3600,
    includeHeartbeats: true,
    reorgDepth,
  });
}

function fetcher(rpc: RpcTransport, over: Partial<LogFetcherOptions> = {}) {
  return createLogFetcher({ rpc, ...logFetcherOptions(options('http://unused')), ...over });
}

/** Runs the worker in this thread over a MessageChannel; collects what it posts. */
function runWorker(opts: ReconcilerOptions) {
  const { port1, port2 } = new MessageChannel();
  const events: ReconcilerEvent[] = [];
  port1.on('message', (m: ReconcilerEvent) => events.push(m));
  const done = runReconcilerWorker({ port: port2, options: opts }, { logger: quiet });
  return {
    events,
    send: (m: unknown) => port1.postMessage(m),
    async stop() {
      port1.postMessage({ type: 'stop' });
      await done;
      await new Promise((r) => setTimeout(r, 20));
      port1.close();
    },
    enqueuedIds: () => new Set(events.flatMap((e) => (e.type === 'enqueued' ? e.jobs.map((j) => j.activity_id) : []))),
  };
}

// ------------------------------------------------------------------------------------------------ tests

describe('adaptive eth_getLogs', () => {
  test('range and result-count errors shrink the range; every event found, every block covered once', async () => {
    const ids = await enqueueActivities(stack, { queue: 'logs-q', count: 25 });
    await anvil.mine(700);
    const more = await enqueueActivities(stack, { queue: 'logs-q', count: 5 });
    const head = await anvil.blockNumber();
    const proxy = await startProxy(anvil.url);
    try {
      proxy.maxRange = 37;
      const chunks: Array<{ fromBlock: number; toBlock: number }> = [];
      const f = fetcher(transport(proxy.url), {
        initialChunkBlocks: 500,
        maxChunkBlocks: 1000,
        growAfter: 2,
        onChunk: (c) => chunks.push(c),
      });
      const logs = await f.getLogs(
        { address: stack.addresses.taskQueue, topics: [TOPICS.enqueued, null, queueKeyTopic('logs-q')] },
        0,
        head,
      );
      const found = logs.map((l: RawLog) => BigInt(l.topics[1]!).toString());
      expect(found).toEqual([...ids, ...more].map(String));
      // Contiguous, non-overlapping coverage of [0, head].
      expect(chunks[0]!.fromBlock).toBe(0);
      for (let i = 1; i < chunks.length; i++) expect(chunks[i]!.fromBlock).toBe(chunks[i - 1]!.toBlock + 1);
      expect(chunks.at(-1)!.toBlock).toBe(head);
      expect(chunks.every((c) => c.toBlock - c.fromBlock + 1 <= 37)).toBe(true);
      expect(f.stats().shrinks).toBeGreaterThan(0);
      // The node's range limit became a ceiling: a second pass needs no (or few) failures.
      const before = proxy.requests.length;
      const again = await f.getLogs(
        { address: stack.addresses.taskQueue, topics: [TOPICS.enqueued, null, queueKeyTopic('logs-q')] },
        0,
        head,
      );
      expect(again.length).toBe(30);
      expect(proxy.requests.length - before).toBeLessThan(Math.ceil((head + 1) / 18) + 10);
    } finally {
      await proxy.stop();
    }
  }, 20_000);
});

describe('scan window', () => {
  test('window start = first block with timestamp >= head - windowS (matches a linear scan)', async () => {
    // 60 blocks 12 s apart, then 30 blocks 2 s apart.
    await anvil.rpc('anvil_mine', ['0x3c', '0xc']);
    await anvil.rpc('anvil_mine', ['0x1e', '0x2']);
    const rpc = transport(anvil.url);
    const head = await getHeader(rpc, 'latest');
    const all: number[] = [];
    for (let n = 0; n <= head.number; n++) all.push((await getHeader(rpc, n)).timestamp);
    for (const windowS of [0, 1, 30, 59, 60, 61, 100, 300, 500, 719, 720, 10_000, 10 ** 9]) {
      const expected = Math.max(
        0,
        all.findIndex((t) => t >= head.timestamp - windowS),
      );
      const got = await findWindowStart(headerReader(rpc), { head, windowS });
      expect({ windowS, got }).toEqual({ windowS, got: expected });
    }
    // A lower bound above the answer is respected (never below it, never below 0).
    expect(await findWindowStart(headerReader(rpc), { head, windowS: 10 ** 9, lowerBound: 5 })).toBe(5);
  }, 20_000);
});

describe('scan + repair', () => {
  const dirs: string[] = [];
  const stores: Store[] = [];
  afterAll(async () => {
    for (const s of stores) await s.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }, 60_000);

  test('finds our claims, completes, failures, expiry, lost claims and workflows; repair is idempotent', async () => {
    const [live, completed, failed] = await enqueueActivities(stack, { queue: 'q', count: 3, heartbeatTimeoutS: 3600 });
    const [expiring] = await enqueueActivities(stack, { queue: 'q', count: 1, heartbeatTimeoutS: 5 });
    const [lost] = await enqueueActivities(stack, { queue: 'q', count: 1 });
    const [wf] = await startWorkflows(stack, { queue: 'q', count: 1, steps: 2 });
    const tq = await claim(workerKey, [live!, completed!, failed!, expiring!, wf!.activityId]);
    await claim(otherKey, [lost!]);
    await (await tq.getFunction('completeActivity')(completed!, 'result-1')).wait();
    await (await tq.getFunction('failActivity')(failed!, 'nope')).wait();
    await (await tq.getFunction('completeActivity')(wf!.activityId, 'wf-result')).wait();
    await anvil.rpc('evm_increaseTime', [30]);
    await anvil.mine(1);

    const rpc = transport(anvil.url);
    const scanner = ourScanner(rpc);
    const head = await getHeader(rpc, 'latest');
    const r1 = await scanner.scan({ reason: 'startup', ids: [String(lost)], head });
    const byId = new Map(r1.facts.map((f) => [f.activityId, f]));
    const get = (id: bigint | undefined) => byId.get(String(id)) as ActivityFact;
    expect(get(live)).toMatchObject({
      status: 2,
      worker: workerAddr.toLowerCase(),
      isExpired: false,
      nowS: head.timestamp,
      blockNumber: head.number,
    });
    expect(get(completed)).toMatchObject({ status: 3, isCompleted: true, resultRef: 'result-1' });
    expect(get(failed)).toMatchObject({ status: 4, resultRef: 'nope' });
    expect(get(expiring)).toMatchObject({ status: 2, isExpired: true });
    expect(get(lost)).toMatchObject({ status: 2, worker: anvil.accounts[2]!.address.toLowerCase() });
    expect(get(wf!.activityId)).toMatchObject({
      status: 3,
      workflowInstance: String(wf!.instanceId),
      workflowResumedPastStep: false,
    });

    // Wiped store: rebuild from the facts in one transaction.
    const dir = mkdtempSync(join(tmpdir(), 'wcp-rec-'));
    dirs.push(dir);
    const store = openStore({ path: join(dir, 'wcp.db'), logger: quiet });
    stores.push(store);
    await store.transact((tx) =>
      tx.put(`claim_job:${String(lost).padStart(20, '0')}`, {
        activity_id: String(lost),
        queue_name: 'q',
        created_at_ms: 1,
      }),
    );
    const ctx = { wallet: workerAddr, nowMs: Date.now(), queueName: 'q' };
    const actions = await reconcileFacts(store, r1.facts, ctx);
    const kinds = Object.fromEntries(
      actions.map((a) => [
        a.activityId,
        a.action.type === 'markDone'
          ? `done:${a.action.done.outcome}`
          : a.action.type === 'rebuildInflight'
            ? `inflight:${a.action.inflight.state}`
            : a.action.type,
      ]),
    );
    expect(kinds).toMatchObject({
      [String(live)]: 'inflight:claimed',
      [String(completed)]: 'done:completed',
      [String(failed)]: 'done:failed',
      [String(expiring)]: 'done:expired',
      [String(lost)]: 'done:lost',
      [String(wf!.activityId)]: 'inflight:resuming',
    });
    expect(store.get(inflightKey(String(live)), InflightSchema)?.state).toBe('claimed');
    expect(store.get(doneKey(String(completed)), DoneSchema)).toMatchObject({
      outcome: 'completed',
      resumed: true,
      result_ref: 'result-1',
    });

    // Replaying the same window: identical facts, and the repairs are no-ops.
    const r2 = await scanner.scan({ reason: 'manual', ids: [String(lost)], head });
    expect(r2.facts).toEqual(r1.facts);
    expect(await reconcileFacts(store, r2.facts, { ...ctx, nowMs: ctx.nowMs + 1000 })).toEqual([]);

    // The workflow is resumed (by anyone): the next scan says so and the repair finishes it.
    await (await stack.contracts.workflowEngine.getFunction('resumeWorkflow')(wf!.instanceId)).wait();
    const r3 = await scanner.scan({ reason: 'periodic' });
    const wfFact = r3.facts.find((f) => f.activityId === String(wf!.activityId)) as ActivityFact;
    expect(wfFact.workflowResumedPastStep).toBe(true);
    expect(planRepair(wfFact, readLocal(store, wfFact.activityId), ctx)).toMatchObject({
      type: 'markDone',
      deleteInflight: true,
      done: { resumed: true },
    });
  }, 30_000);
});

describe('periodic scans', () => {
  test('skip an activity once it is settled at a head reorgDepth deep; full scans read it again', async () => {
    const [completed, failed, live] = await enqueueActivities(stack, {
      queue: 'settle-q',
      count: 3,
      heartbeatTimeoutS: 3600,
    });
    const [wf] = await startWorkflows(stack, { queue: 'settle-q', count: 1, steps: 2 });
    const tq = await claim(workerKey, [completed!, failed!, live!, wf!.activityId]);
    await (await tq.getFunction('completeActivity')(completed!, 'done')).wait();
    await (await tq.getFunction('failActivity')(failed!, 'no')).wait();
    await (await tq.getFunction('completeActivity')(wf!.activityId, 'wf-done')).wait();

    const rpc = transport(anvil.url);
    const depth = 3;
    const scanner = ourScanner(rpc, depth);
    const read = async (reason: 'startup' | 'periodic' | 'manual') => {
      const r = await scanner.scan({ reason });
      return new Map(r.facts.map((f) => [f.activityId, f]));
    };
    const mine = [completed, failed, live, wf!.activityId].map(String);
    const has = (facts: Map<string, ActivityFact>) => mine.filter((id) => facts.has(id));

    // Seen settled (completed, failed) at this head: read until that head is `depth` deep.
    expect(has(await read('startup'))).toEqual(mine);
    await anvil.mine(depth - 1);
    expect(has(await read('periodic'))).toEqual(mine);
    await anvil.mine(1);
    // Now skipped; the live claim and the completion whose workflow waits for its resume are still read.
    expect(has(await read('periodic'))).toEqual([String(live), String(wf!.activityId)]);

    // The workflow is resumed: read once more (it says so), then skipped too.
    await (await stack.contracts.workflowEngine.getFunction('resumeWorkflow')(wf!.instanceId)).wait();
    const resumed = await read('periodic');
    expect(resumed.get(String(wf!.activityId))?.workflowResumedPastStep).toBe(true);
    await anvil.mine(depth);
    expect(has(await read('periodic'))).toEqual([String(live)]);

    // A full scan (startup, manual, reorg) reads every one again.
    expect(has(await read('manual'))).toEqual(mine);
  }, 30_000);
});

describe('large ids', () => {
  test('a completed activity of a workflow instance above 255 is scanned (its events are asked by a 32-byte topic)', async () => {
    // Instance ids 256–4095 have three hex digits: a topic built from them once failed every scan for good.
    let wf: Awaited<ReturnType<typeof startWorkflows>>[number] | undefined;
    while (!wf || wf.instanceId < 256n) {
      const started = await startWorkflows(stack, { queue: 'big-q', count: 64, steps: 2 });
      wf = started[started.length - 1];
    }
    const tq = await claim(workerKey, [wf.activityId]);
    await (await tq.getFunction('completeActivity')(wf.activityId, 'r')).wait();
    const rpc = transport(anvil.url);
    const scanner = ourScanner(rpc);
    const r = await scanner.scan({ reason: 'startup' });
    expect(r.facts.find((f) => f.activityId === String(wf.activityId))).toMatchObject({
      status: 3,
      workflowInstance: String(wf.instanceId),
      workflowResumedPastStep: false,
    });
  }, 60_000);
});

describe('follower', () => {
  test('ingests ActivityEnqueued of our queue, including events mined while the startup scan runs', async () => {
    const before = await enqueueActivities(stack, { queue: 'follow-q', count: 3 });
    await enqueueActivities(stack, { queue: 'other-q', count: 2 });
    const proxy = await startProxy(anvil.url);
    // While the startup scan's first eth_getLogs is in flight (its head is pinned by then), enqueue more.
    let during: bigint[] = [];
    proxy.onRequest = async (method) => {
      if (method !== 'eth_getLogs' || during.length > 0) return;
      proxy.onRequest = undefined;
      during = await enqueueActivities(stack, { queue: 'follow-q', count: 3 });
    };
    const w = runWorker(options(proxy.url, { queueName: 'follow-q' }));
    try {
      await untilTrue(() => w.events.some((e) => e.type === 'startupScanDone'), 'startupScanDone', 10_000, 20);
      const scanDone = w.events.find((e) => e.type === 'startupScanDone') as { toBlock: number };
      expect(during.length).toBe(3);
      const after = await enqueueActivities(stack, { queue: 'follow-q', count: 2 });
      const want = [...before, ...during, ...after].map(String);
      await untilTrue(() => want.every((id) => w.enqueuedIds().has(id)), 'all enqueued jobs', 10_000, 20);
      expect([...w.enqueuedIds()].sort()).toEqual(want.sort());
      const jobs = w.events.flatMap((e) => (e.type === 'enqueued' ? e.jobs : []));
      expect(
        jobs.every((j) => j.source === 'event' && j.queue_name === 'follow-q' && typeof j.block_hash === 'string'),
      ).toBe(true);
      // Facts and startupScanDone come before following; checkpoints advance.
      const order = w.events.map((e) => e.type);
      expect(order.indexOf('facts')).toBeLessThan(order.indexOf('startupScanDone'));
      expect(order.indexOf('startupScanDone')).toBeLessThan(order.indexOf('enqueued'));
      const cps = w.events.flatMap((e) => (e.type === 'checkpoint' ? [e.block_number] : []));
      expect(cps.at(-1)!).toBeGreaterThanOrEqual(scanDone.toBlock);
      // The events mined during the scan lie beyond the scan's head: only the hand-off can have caught them.
      const duringJobs = jobs.filter((j) => during.map(String).includes(j.activity_id));
      expect(duringJobs.every((j) => j.block_number! > scanDone.toBlock)).toBe(true);
      // A manual rescan on request.
      w.send({ type: 'scanNow', reason: 'test', ids: [String(before[0])] });
      await untilTrue(
        () => w.events.some((e) => e.type === 'facts' && e.reason === 'manual'),
        'manual facts',
        5_000,
        20,
      );
      const manual = w.events.find((e) => e.type === 'facts' && e.reason === 'manual') as Extract<
        ReconcilerEvent,
        { type: 'facts' }
      >;
      expect(manual.facts.find((f) => f.activityId === String(before[0]))).toMatchObject({
        status: 1,
        queue: 'follow-q',
      });
    } finally {
      await w.stop();
      await proxy.stop();
    }
    expect(w.events.at(-1)).toEqual({ type: 'stopped' });
  }, 30_000);

  test('a reorg is detected with its fork block and the new branch is ingested', async () => {
    const rpc = transport(anvil.url);
    const start = (await anvil.blockNumber()) + 1;
    const follower = createFollower({
      rpc,
      logs: fetcher(rpc),
      ...addrs(),
      queueName: 'reorg-q',
      startBlock: start,
      maxBlocksPerStep: 2_000,
      reorgDepth: REORG_DEPTH,
      filterClaimable: true,
    });
    const snap = await anvil.rpc<string>('evm_snapshot');
    const [x] = await enqueueActivities(stack, { queue: 'reorg-q', count: 1 });
    const xBlock = await anvil.blockNumber();
    await anvil.mine(2);
    const s1 = await follower.step();
    expect(s1.jobs.map((j) => j.activity_id)).toEqual([String(x)]);
    expect(s1.jobs[0]!.block_number).toBe(xBlock);

    await anvil.rpc('evm_revert', [snap]);
    stack.deployer.reset();
    await anvil.rpc('evm_increaseTime', [7]);
    const [y] = await enqueueActivities(stack, { queue: 'reorg-q', count: 2 });
    await anvil.mine(3);
    const s2 = await follower.step();
    expect(s2.reorg).toBeDefined();
    expect(s2.reorg!.forkBlock).toBe(xBlock);
    const jobs = [];
    for (let i = 0; i < 5; i++) {
      const s = await follower.step();
      expect(s.reorg).toBeUndefined();
      jobs.push(...s.jobs);
      if (s.caughtUp) break;
    }
    // The same id was re-used by the new branch's enqueue; its block hash is the new one.
    expect(jobs.map((j) => j.activity_id)).toContain(String(y));
    const newHash = (await getHeader(rpc, jobs[0]!.block_number!)).hash;
    expect(jobs[0]!.block_hash).toBe(newHash);
  }, 20_000);

  test('RPC down for a few seconds: the worker backs off, then catches up without missing an event', async () => {
    const proxy = await startProxy(anvil.url);
    const w = runWorker(options(proxy.url, { queueName: 'outage-q' }));
    try {
      await untilTrue(() => w.events.some((e) => e.type === 'startupScanDone'), 'startupScanDone', 10_000, 20);
      const first = await enqueueActivities(stack, { queue: 'outage-q', count: 1 });
      await untilTrue(() => w.enqueuedIds().has(String(first[0])), 'first job', 5_000, 20);
      await proxy.stop();
      const whileDown = await enqueueActivities(stack, { queue: 'outage-q', count: 3 });
      await anvil.mine(5);
      await untilTrue(() => w.events.some((e) => e.type === 'error'), 'an error report', 5_000, 20);
      await new Promise((r) => setTimeout(r, 1_500));
      await proxy.start();
      const after = await enqueueActivities(stack, { queue: 'outage-q', count: 1 });
      const want = [...first, ...whileDown, ...after].map(String);
      await untilTrue(() => want.every((id) => w.enqueuedIds().has(id)), 'jobs after the outage', 10_000, 20);
      const err = w.events.find((e) => e.type === 'error') as Extract<ReconcilerEvent, { type: 'error' }>;
      expect(err.error.retryable).toBe(true);
      expect(err.error.code).toBe('CHAIN_UNREACHABLE');
      // Checkpoints never skip: each starts right after the previous one.
      const cps = w.events.flatMap((e) => (e.type === 'checkpoint' ? [e.block_number] : []));
      for (let i = 1; i < cps.length; i++) expect(cps[i]!).toBeGreaterThanOrEqual(cps[i - 1]!);
    } finally {
      await w.stop();
      await proxy.stop();
    }
  }, 30_000);

  test('a checkpoint whose block hash changed while wcp was down is reported as a reorg and re-ingested', async () => {
    const [a] = await enqueueActivities(stack, { queue: 'cp-q', count: 1 });
    const aBlock = await anvil.blockNumber();
    await anvil.mine(3);
    const cpBlock = aBlock + 2;
    const bogus = `0x${'ab'.repeat(32)}`;
    const w = runWorker(
      options(anvil.url, {
        queueName: 'cp-q',
        reorgDepth: 8,
        checkpoint: { block_number: cpBlock, block_hash: bogus },
      }),
    );
    try {
      await untilTrue(() => w.enqueuedIds().has(String(a)), 're-ingested job', 10_000, 20);
      const reorg = w.events.find((e) => e.type === 'reorg') as Extract<ReconcilerEvent, { type: 'reorg' }>;
      expect(reorg.forkBlock).toBe(cpBlock - 8 + 1);
      expect(w.events.findIndex((e) => e.type === 'reorg')).toBeLessThan(
        w.events.findIndex((e) => e.type === 'enqueued'),
      );
    } finally {
      await w.stop();
    }
  }, 20_000);
});
