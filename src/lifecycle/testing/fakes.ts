/**
 * FAKES FOR THE LIFECYCLE'S UNIT TESTS ONLY (never imported by the daemon): a tx sender whose submits the test
 * releases, a JSON-RPC transport answering headers and Multicall3 `getActivity` reads from a table, a fixed chain
 * clock, and a context over a real LMDB store in a temp dir. End-to-end behaviour on anvil is tested in `test/`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { multicallIface, taskQueueIface } from '../../chain/abi.ts';
import type { RpcTransport } from '../../chain/transport.ts';
import type { ExecutorEvent, TaskSpec } from '../../executor/messages.ts';
import { createLogger } from '../../internal/logger.ts';
import { createMetrics } from '../../internal/metrics.ts';
import { openStore, type Store } from '../../store/store.ts';
import type { SubmitResult, TxEvent, TxRequest } from '../../txmgr/types.ts';
import type { ActivityFact } from '../../chain/facts.ts';
import type { ChainClock } from '../clock.ts';
import { createCompletions } from '../completions.ts';
import { createDispatchStep } from '../dispatch.ts';
import { createExecutorEvents } from '../executor-events.ts';
import { executorEventTable, route, txEventTable } from '../manager.ts';
import { createFillDetails } from '../details.ts';
import type { Effect } from '../effects.ts';
import { createRecheckStep } from '../recheck.ts';
import { commit } from '../records.ts';
import { createEffectsRunner, type EffectsRunner, type RunnerDeps } from '../runner.ts';
import { createSend } from '../send.ts';
import { createSettleTx } from '../tx-events.ts';
import { createLinkView, type LinkView } from '../link.ts';
import type { ExecutorLink, LifecycleContext, TxSender } from '../context.ts';
import { createInFlightTracker } from '../tracker.ts';
import { NOW_S, TQ, testOptions, WALLET } from './fixtures.ts';

/** Submits wait until the test calls `releaseAll` (a lane busy with earlier work), unless `auto`. */
export interface FakeTxSender extends TxSender {
  submitted: TxRequest[];
  releaseAll(): void;
  auto: boolean;
}

export function fakeTxSender(): FakeTxSender {
  const held: Array<() => void> = [];
  let nonce = 0;
  const fake: FakeTxSender = {
    submitted: [],
    auto: false,
    submit: (req) =>
      new Promise<SubmitResult>((resolve) => {
        fake.submitted.push(req);
        // Its turn: asked whether still wanted, then given a nonce (told at once, as the lane does).
        const ok = () => {
          if (req.stillWanted && !req.stillWanted()) {
            resolve({
              ok: false,
              stage: 'withdrawn',
              error: { code: 'TX_REFUSED', message: 'withdrawn', retryable: false },
            });
            return;
          }
          const n = nonce++;
          req.onNonce?.(n);
          resolve({
            ok: true,
            nonce: n,
            hash: `0x${n.toString(16).padStart(64, '0')}`,
            gasLimit: 1n,
            maxFeePerGas: 1n,
            maxPriorityFeePerGas: 1n,
          });
        };
        if (fake.auto) ok();
        else held.push(ok);
      }),
    simulate: async () => ({ ok: true as const, returnData: '0x' }),
    inFlight: () => 0,
    releaseAll: () => {
      for (const r of held.splice(0)) r();
    },
  };
  return fake;
}

/** One activity on the fake chain (getActivity's tuple, by field). */
export interface FakeActivity {
  status: 0 | 1 | 2 | 3 | 4;
  worker?: string;
  activityType?: string;
  lastHeartbeatAt?: number;
  heartbeatTimeout?: number;
  expiresAt?: number;
}

/**
 * A JSON-RPC transport over a table of activities. `hold` makes the next requests of a method wait until the
 * returned function is called (a slow node).
 */
export interface FakeChain extends RpcTransport {
  activities: Map<string, FakeActivity>;
  /** Block number → timestamp (latest is `head`). */
  head: { number: number; timestamp: number };
  hold(method: string): () => void;
  calls: string[];
}

export function fakeChain(): FakeChain {
  const holds = new Map<string, Promise<void>>();
  const answer = (method: string, params: unknown[]): unknown => {
    if (method === 'eth_getBlockByNumber') {
      const tag = params[0] as string;
      const number = tag === 'latest' ? chain.head.number : Number(BigInt(tag));
      const timestamp = tag === 'latest' ? chain.head.timestamp : chain.head.timestamp - (chain.head.number - number);
      return {
        number: `0x${number.toString(16)}`,
        hash: `0x${'1'.repeat(64)}`,
        parentHash: `0x${'0'.repeat(64)}`,
        timestamp: `0x${timestamp.toString(16)}`,
      };
    }
    if (method === 'eth_call') {
      const [{ data }] = params as [{ to: string; data: string }];
      const [calls] = multicallIface.decodeFunctionData('aggregate3', data) as unknown as [
        Array<[string, boolean, string]>,
      ];
      const results = calls.map(([, , callData]) => {
        const [id] = taskQueueIface.decodeFunctionData('getActivity', callData) as unknown as [bigint];
        const a = chain.activities.get(id.toString()) ?? { status: 0 };
        const tuple = [
          id,
          'q',
          0n,
          0,
          a.activityType ?? 'echo',
          '',
          a.status,
          a.worker ?? '0x0000000000000000000000000000000000000000',
          0n,
          0n,
          BigInt(a.lastHeartbeatAt ?? 0),
          BigInt(a.heartbeatTimeout ?? 600),
          BigInt(a.expiresAt ?? NOW_S + 3600),
          0n,
          a.status === 3,
          false,
          '',
        ];
        return [true, taskQueueIface.encodeFunctionResult('getActivity', [tuple])];
      });
      return multicallIface.encodeFunctionResult('aggregate3', [results]);
    }
    throw new Error(`fake chain: ${method} not supported`);
  };
  const chain: FakeChain = {
    activities: new Map(),
    head: { number: 100, timestamp: NOW_S },
    calls: [],
    hold(method) {
      let open!: () => void;
      holds.set(method, new Promise<void>((r) => (open = r)));
      return () => {
        holds.delete(method);
        open();
      };
    },
    async request<T>(method: string, params: unknown[]): Promise<T> {
      chain.calls.push(method);
      await holds.get(method);
      return answer(method, params) as T;
    },
  };
  return chain;
}

/** A chain clock standing still at `nowS` (a block has been read). */
export function fakeClock(nowS = NOW_S): ChainClock & { set(s: number): void } {
  let t = nowS;
  return {
    refresh: async () => {},
    known: () => true,
    nowS: () => t,
    skewS: () => 0,
    set(s) {
      t = s;
    },
  };
}

type Ack = Parameters<ExecutorLink['ackCompletion']>[0];

/** An executor link recording what it was told (`tasks`: every assignment, re-offers included, in order). */
export function fakeExecutor(): ExecutorLink & {
  assigned: string[];
  tasks: TaskSpec[];
  cancelled: string[];
  acks: Ack[];
} {
  const fake = {
    assigned: [] as string[],
    tasks: [] as TaskSpec[],
    cancelled: [] as string[],
    acks: [] as Ack[],
    assign: (t: TaskSpec) => {
      fake.assigned.push(t.activity_id);
      fake.tasks.push(t);
    },
    cancel: (id: string) => void fake.cancelled.push(id),
    ackCompletion: (a: Ack) => void fake.acks.push(a),
    drain: () => {},
  };
  return fake;
}

const cleanups: Array<() => Promise<void>> = [];

/** Closes the stores and removes the temp dirs of every `testContext` so far (call in `afterEach`). */
export async function cleanupTestContexts(): Promise<void> {
  for (const c of cleanups.splice(0)) await c();
}

/** A context over a real LMDB store in a temp dir and the fakes above. */
export function testContext() {
  const dir = mkdtempSync(join(tmpdir(), 'wcp-lifecycle-'));
  const logger = createLogger('test', { write: () => {} });
  const store: Store = openStore({ path: join(dir, 'wcp.db'), logger });
  cleanups.push(async () => {
    await store.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });
  const txm = fakeTxSender();
  const rpc = fakeChain();
  const executor = fakeExecutor();
  const clock = fakeClock();
  const ctx: LifecycleContext = {
    opts: testOptions,
    store,
    txm,
    rpc,
    executor,
    log: logger,
    metrics: createMetrics(),
    now: Date.now,
    clock,
    tracker: createInFlightTracker(),
  };
  return { ctx, store, txm, rpc, executor, clock, tracker: ctx.tracker };
}

type Confirmed = Extract<TxEvent, { type: 'confirmed' }>;

/** A confirmed receipt of `req` (nonce `nonce`) emitting `events` (TaskQueue event name and activity id; worker = us). */
export function confirmed(
  req: TxRequest,
  nonce: number,
  events: Array<[name: string, id: string, worker?: string]>,
  blockNumber = 100,
): Confirmed {
  const logs = events.map(([name, id, worker], i) => {
    const extra = name === 'ActivityCompleted' || name === 'ActivityFailed' ? [''] : [];
    const l = taskQueueIface.encodeEventLog(name, [id, worker ?? WALLET, ...extra]);
    return { address: TQ, topics: l.topics, data: l.data, logIndex: i };
  });
  return {
    type: 'confirmed',
    kind: req.kind,
    nonce,
    activityIds: req.activityIds,
    hash: `0x${'a'.repeat(64)}`,
    blockNumber,
    blockHash: `0x${'b'.repeat(64)}`,
    status: 'success',
    gasUsed: 1n,
    logs,
  };
}

/** The same receipt as `confirmed`, as first seen at inclusion (the `mined` event, before any confirmation). */
export function mined(
  req: TxRequest,
  nonce: number,
  events: Array<[name: string, id: string, worker?: string]>,
  blockNumber = 100,
): Extract<TxEvent, { type: 'mined' }> {
  const c = confirmed(req, nonce, events, blockNumber);
  return {
    type: 'mined',
    kind: c.kind,
    nonce,
    activityIds: c.activityIds,
    hash: c.hash,
    blockNumber,
    blockHash: c.blockHash,
    status: 'success',
    logs: c.logs,
  };
}

/** A link view that is ready (handshaken) and serves `types` (`*`: every type). */
export function readyLink(types: string[] = ['*']): LinkView {
  const link = createLinkView();
  link.onState({ type: 'state', state: 'ready', activity_types: types });
  return link;
}

/**
 * The steps around a test context as the manager wires them: the effects runner (over `over`'s deps when given),
 * the re-check run through it, and the tx-event handler (events no decider wants are dropped, as by the manager).
 */
export function testSteps(t: ReturnType<typeof testContext>, over: Partial<RunnerDeps> = {}) {
  const send = createSend(t.ctx);
  const fillDetails = createFillDetails(t.ctx);
  const step = createRecheckStep(t.ctx);
  const runner = createEffectsRunner(t.ctx, {
    send,
    fillDetails,
    recheck: step.recheck,
    defer: () => {},
    forgetDispatch: () => {},
    ...over,
  });
  const recheck = {
    recheck: (ids: string[], why: string) => runner.run([{ kind: 'recheck', ids, why }]),
    applyFacts: async (facts: ActivityFact[], why: string) => runner.run(await step.applyFacts(facts, why)),
    periodic: () => step.periodic(),
  };
  const txEvents = txEventTable(createSettleTx(t.ctx, runner));
  const settle = (ev: TxEvent) => route(txEvents, ev) ?? Promise.resolve();
  return { send, fillDetails, runner, recheck, settle };
}

/**
 * A runner over the real store whose finishing calls are recorded in `finished` as `id:completing` /
 * `id:failing` (not sent) and whose ends as `id:outcome`; every other effect runs.
 */
export function recordingRunner(t: ReturnType<typeof testContext>, over: Partial<RunnerDeps> = {}) {
  const finished: string[] = [];
  const real = createEffectsRunner(t.ctx, {
    send: createSend(t.ctx),
    fillDetails: async () => {},
    recheck: async () => [],
    defer: () => {},
    forgetDispatch: () => {},
    ...over,
  });
  const run = async (effects: readonly Effect[]) => {
    for (const e of effects) {
      if (e.kind === 'complete' || e.kind === 'fail')
        finished.push(`${e.id}:${e.kind === 'complete' ? 'completing' : 'failing'}`);
      else {
        if (e.kind === 'ended') finished.push(`${e.id}:${e.outcome}`);
        await real.run([e]);
      }
    }
  };
  const runner: EffectsRunner = {
    run,
    decide: async (ids, decide) => await run((await commit(t.ctx.store, ids, decide)).effects),
  };
  return { runner, finished };
}

/**
 * The executor side of the lifecycle over `link` (a ready one unless given): dispatch, completions and the executor
 * messages routed by the manager's table, over a recording runner.
 */
export function executorSide(
  t: ReturnType<typeof testContext>,
  o: { link?: LinkView; recheck?: (ids: string[], why: string) => Promise<void> } = {},
) {
  const link = o.link ?? readyLink();
  const dispatch = createDispatchStep(t.ctx, { link });
  const { runner, finished } = recordingRunner(t, { defer: dispatch.defer, forgetDispatch: dispatch.forget });
  const completions = createCompletions(t.ctx, { runner, link, recheck: o.recheck ?? (async () => {}) });
  const table = executorEventTable(createExecutorEvents(t.ctx, { runner, dispatch, link }), completions);
  const onExecutor = async (ev: ExecutorEvent) => await route(table, ev);
  return { link, dispatch, runner, finished, completions, onExecutor };
}
