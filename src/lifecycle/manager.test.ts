import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../internal/logger.ts';
import { createMetrics } from '../internal/metrics.ts';
import type { ActivityFact } from '../chain/facts.ts';
import type { RpcTransport } from '../chain/transport.ts';
import { claimJobKey, doneKey, inflightKey } from '../store/keys.ts';
import { type Inflight, InflightSchema } from '../store/records.ts';
import { openStore, type Store } from '../store/store.ts';
import type { SubmitResult, TxRequest } from '../txmgr/types.ts';
import { type ActivityManager, createActivityManager } from './manager.ts';
import type { LifecycleOptions } from './options.ts';
import { fakeChain } from './testing/fakes.ts';
import { untilTrue } from '../internal/testing/until.ts';
import { testOptions, WALLET } from './testing/fixtures.ts';

const dirs: string[] = [];
const stores: Store[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => {});
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A manager that is never started (no tick, no chain reads): only the event paths under test run. */
function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'wcp-manager-'));
  dirs.push(dir);
  const store = openStore({ path: join(dir, 'wcp.db'), logger: createLogger('test', { write: () => {} }) });
  stores.push(store);
  const options: LifecycleOptions = testOptions;

  const submitted: TxRequest[] = [];
  const release: Array<() => void> = [];
  let nonce = 0;
  const txm = {
    /** Every submit waits until the test releases it (a lane busy with earlier work). */
    submit: (req: TxRequest) =>
      new Promise<SubmitResult>((resolve) => {
        submitted.push(req);
        const n = nonce++;
        release.push(() =>
          resolve({
            ok: true,
            nonce: n,
            hash: `0x${n.toString(16).padStart(64, '0')}`,
            gasLimit: 1n,
            maxFeePerGas: 1n,
            maxPriorityFeePerGas: 1n,
          }),
        );
      }),
    simulate: async () => ({ ok: true as const, returnData: '0x' }),
    inFlight: () => 0,
  };
  const rpc: RpcTransport = { request: async () => Promise.reject(new Error('no chain in this test')) };
  const manager: ActivityManager = createActivityManager({
    options,
    store,
    txm,
    rpc,
    executor: { assign: () => {}, cancel: () => {}, ackCompletion: () => {}, drain: () => {} },
    logger: createLogger('test', { write: () => {} }),
    metrics: createMetrics(),
  });
  return { store, manager, submitted, release };
}

function running(id: string): Inflight {
  const nowS = Math.floor(Date.now() / 1000);
  return {
    activity_id: id,
    state: 'running',
    queue_name: 'q',
    activity_type: 'echo',
    input_ref: '',
    expires_at_s: nowS + 3600,
    heartbeat_timeout_s: 600,
    last_heartbeat_s: nowS,
    dispatch_attempts: 1,
    created_at_ms: 1,
    updated_at_ms: 1,
  };
}

/** Chain truth for `id`: claimed by us, live (what a scan read just before the executor finished). */
function claimedByUs(id: string): ActivityFact {
  const nowS = Math.floor(Date.now() / 1000);
  return {
    activityId: id,
    exists: true,
    queue: 'q',
    workflowInstance: '0',
    stepIndex: 0,
    activityType: 'echo',
    inputRef: '',
    status: 2,
    worker: WALLET,
    enqueuedAtS: nowS - 10,
    claimedAtS: nowS - 5,
    lastHeartbeatAtS: nowS,
    heartbeatTimeoutS: 600,
    expiresAtS: nowS + 3600,
    finishedAtS: 0,
    isCompleted: false,
    isExpired: false,
    resultRef: '',
    nowS,
    blockNumber: 10,
  };
}

const settle = () => new Promise((r) => setTimeout(r, 100));

describe('activity manager: finishing', () => {
  test('an executor completion and a re-drive from chain facts arriving together send ONE complete', async () => {
    const { store, manager, submitted, release } = setup();
    await store.transact((tx) => tx.put(inflightKey('7'), running('7')));
    // Facts first, the completion right behind: the re-drive sees `completing` (both writes land in one commit)
    // and the completion path then finds the complete already being submitted.
    const facts = manager.onFacts([claimedByUs('7')]);
    manager.onExecutorEvent({
      type: 'completion',
      activity_id: '7',
      attempt: 1,
      result: { ok: true, output_refs: { result: 'r' }, metadata_json: '{}' },
    });
    await settle();
    for (const r of release.splice(0)) r();
    await facts;
    await settle();
    for (const r of release.splice(0)) r();
    expect(submitted.map((s) => `${s.kind}(${s.activityIds.join(',')})`)).toEqual(['complete(7)']);
    expect(store.get(inflightKey('7'), InflightSchema)?.state).toBe('completing');
  });

  test('the other order (completion first, facts right behind) also sends one complete', async () => {
    const { store, manager, submitted, release } = setup();
    await store.transact((tx) => tx.put(inflightKey('8'), running('8')));
    manager.onExecutorEvent({
      type: 'completion',
      activity_id: '8',
      attempt: 1,
      result: { ok: true, output_refs: { result: 'r' }, metadata_json: '{}' },
    });
    const facts = manager.onFacts([claimedByUs('8')]);
    await settle();
    for (const r of release.splice(0)) r();
    await facts;
    await settle();
    for (const r of release.splice(0)) r();
    expect(submitted.map((s) => `${s.kind}(${s.activityIds.join(',')})`)).toEqual(['complete(8)']);
  });
});

describe('activity manager: a Progress and its Completion back to back', () => {
  // The Progress commits assigned → running while the Completion is being handled: the Completion must be
  // applied to the record as it is then, not dropped because it read `assigned` before that commit.
  const assigned = (id: string): Inflight => ({ ...running(id), state: 'assigned' });
  const ok = { ok: true as const, output_refs: { result: 'r' }, metadata_json: '{}' };

  test('a success is completed on chain', async () => {
    const { store, manager, submitted, release } = setup();
    await store.transact((tx) => tx.put(inflightKey('9'), assigned('9')));
    manager.onExecutorEvent({ type: 'progress', activity_id: '9', fraction: 0.9, message: 'slept' });
    manager.onExecutorEvent({ type: 'completion', activity_id: '9', attempt: 1, result: ok });
    await settle();
    for (const r of release.splice(0)) r();
    expect(submitted.map((s) => `${s.kind}(${s.activityIds.join(',')})`)).toEqual(['complete(9)']);
    expect(store.get(inflightKey('9'), InflightSchema)?.state).toBe('completing');
  });

  test('a retryable failure is re-offered', async () => {
    const { store, manager, submitted } = setup();
    await store.transact((tx) => tx.put(inflightKey('10'), assigned('10')));
    manager.onExecutorEvent({ type: 'progress', activity_id: '10', fraction: 0.5, message: '' });
    manager.onExecutorEvent({
      type: 'completion',
      activity_id: '10',
      attempt: 1,
      result: { ok: false, code: 'X', message: 'try again', retryable: true },
    });
    await settle();
    expect(submitted).toEqual([]);
    expect(store.get(inflightKey('10'), InflightSchema)?.state).toBe('claimed');
  });

  test('a Completion of another attempt than the one held is not applied', async () => {
    const { store, manager, submitted } = setup();
    await store.transact((tx) => tx.put(inflightKey('11'), { ...assigned('11'), dispatch_attempts: 2 }));
    manager.onExecutorEvent({ type: 'progress', activity_id: '11', fraction: 0.5, message: '' });
    manager.onExecutorEvent({ type: 'completion', activity_id: '11', attempt: 1, result: ok });
    await settle();
    expect(submitted).toEqual([]);
    expect(store.get(inflightKey('11'), InflightSchema)?.state).toBe('running');
  });
});

/**
 * A started manager over a fake chain where activity 5 is held and live, its next heartbeat (interval 10 s) due
 * ~0.6 s after the start; `hangs(req)` keeps a submit from ever getting its turn (its estimate hangs).
 */
async function liveSetup(
  hangs: (req: TxRequest) => boolean,
  seed: (store: Store) => Promise<unknown> = async () => {},
  extra: { donePruneFirstMs?: number } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), 'wcp-manager-'));
  dirs.push(dir);
  const logger = createLogger('test', { write: () => {} });
  const store = openStore({ path: join(dir, 'wcp.db'), logger });
  stores.push(store);
  const rpc = fakeChain();
  const nowS = Math.floor(Date.now() / 1000);
  rpc.head = { number: 100, timestamp: nowS };
  rpc.activities.set('5', { status: 2, worker: WALLET, lastHeartbeatAt: nowS - 9, heartbeatTimeout: 600 });
  await store.transact((tx) => tx.put(inflightKey('5'), { ...running('5'), last_heartbeat_s: nowS - 9.4 }));
  await seed(store);
  const submitted: TxRequest[] = [];
  let nonce = 0;
  const txm = {
    submit: (req: TxRequest) =>
      new Promise<SubmitResult>((resolve) => {
        submitted.push(req);
        if (!hangs(req))
          resolve({ ok: true, nonce: nonce++, hash: '0x', gasLimit: 1n, maxFeePerGas: 1n, maxPriorityFeePerGas: 1n });
      }),
    simulate: async () => ({ ok: true as const, returnData: '0x' }),
    inFlight: () => 0,
  };
  const manager = createActivityManager({
    options: { ...testOptions, heartbeatIntervalMs: 10_000 },
    store,
    txm,
    rpc,
    executor: { assign: () => {}, cancel: () => {}, drain: () => {}, ackCompletion: () => {} },
    logger,
    metrics: createMetrics(),
    ...extra,
  });
  return { rpc, submitted, manager, store };
}

describe('activity manager: no step waits on another', () => {
  test('a claim whose submit hangs (a slow node) does not hold back heartbeats', async () => {
    const { submitted, manager, store } = await liveSetup(
      (req) => req.kind !== 'heartbeat', // claims never get their turn; heartbeats go through
      (store) =>
        store.transact((tx) =>
          tx.put(claimJobKey('6'), {
            activity_id: '6',
            queue_name: 'q',
            created_at_ms: 1,
            source: 'poll',
            activity_type: 'test.slow',
            input_ref: 'json:{}',
          }),
        ),
    );
    await manager.start();
    // An executor that is ready, serves every type and has room: the claim gate lets the claim through.
    manager.onExecutorEvent({ type: 'state', state: 'ready', activity_types: ['*'] });
    manager.onExecutorEvent({ type: 'credits', available: 5 });
    manager.setClaimsEnabled(true);
    try {
      await untilTrue(() => submitted.some((r) => r.kind === 'claim_batch'));
      // While that claim hangs, another held activity comes due (the first round after the start heartbeated 5).
      const atClaim = submitted.length;
      const nowS = Math.floor(Date.now() / 1000);
      await store.transact((tx) => tx.put(inflightKey('7'), { ...running('7'), last_heartbeat_s: nowS - 10 }));
      await untilTrue(() => submitted.slice(atClaim).some((r) => r.kind === 'heartbeat'));
      expect(submitted.map((r) => `${r.kind}(${r.activityIds.join(',')})`)).toEqual([
        'heartbeat(5)',
        'claim_batch(6)',
        'heartbeat(7)',
      ]);
    } finally {
      manager.setClaimsEnabled(false);
      void manager.stop(); // the hung claim round never ends
    }
  });

  test('after a restart, heartbeats go out while the startup re-check still waits on a slow node', async () => {
    const { rpc, submitted, manager } = await liveSetup(() => false);
    const unhold = rpc.hold('eth_call'); // the re-check's activity reads hang
    const started = manager.start();
    try {
      await untilTrue(() => submitted.some((r) => r.kind === 'heartbeat'));
      expect(submitted.map((r) => `${r.kind}(${r.activityIds.join(',')})`)).toEqual(['heartbeat(5)']);
    } finally {
      unhold();
      await started;
      await manager.stop();
    }
  });
});

describe('activity manager: done retention', () => {
  test('done records past the retention are deleted once running; recent ones stay', async () => {
    const HOUR = 3_600_000;
    const done = (id: string, ago: number) => ({
      activity_id: id,
      outcome: 'completed' as const,
      resumed: true,
      finished_at_ms: Date.now() - ago,
    });
    const { manager, store } = await liveSetup(
      () => false,
      (store) =>
        store.transact((tx) => {
          tx.put(doneKey('1'), done('1', 25 * HOUR));
          tx.put(doneKey('2'), done('2', HOUR));
        }),
      { donePruneFirstMs: 0 },
    );
    await manager.start();
    try {
      await untilTrue(() => !store.has(doneKey('1')));
      expect(store.has(doneKey('2'))).toBe(true);
    } finally {
      await manager.stop();
    }
  });
});
