import { describe, expect, test } from 'bun:test';
import { createLogger } from '../internal/logger.ts';
import type { SimResult, SubmitResult, TxEvent, TxRequest } from '../txmgr/types.ts';
import { type BatchCodec, createBatcher, expandBatchEvent, gasGuess } from './batcher.ts';
import { claimCall, completeCall, heartbeatCall, resumeCall } from './calls.ts';

const TQ = '0x00000000000000000000000000000000000000aa';
const WF = '0x00000000000000000000000000000000000000bb';
const WALLET = '0x00000000000000000000000000000000000000cc';
const log = createLogger('test', { write: () => {} });

/** A codec whose simulation answers come from `failing` (indexes that fail) and whose failures come from logs. */
function fakeCodec(failing: () => Set<number>): BatchCodec {
  return {
    encodeExecute: (calls) => `0xee${calls.map((c) => c.data.slice(2)).join('')}`,
    encodeExecuteStrict: (calls) => `0xef${calls.map((c) => c.data.slice(2)).join('')}`,
    encodeSimulate: (calls) => `0x55${calls.length.toString(16).padStart(4, '0')}`,
    decodeSimulate: (ret) => {
      const n = Number.parseInt(ret.slice(2), 16);
      return Array.from({ length: n }, (_, i) => ({ ok: !failing().has(i), returnData: '0x' }));
    },
    failures: (logs) => new Map(logs.map((l) => [Number(l.data), '0x'] as const)),
  };
}

/** A lane that records submits and hands out nonces; simulations answer with the number of calls simulated. */
function fakeLane() {
  const submits: TxRequest[] = [];
  let nonce = 0;
  return {
    submits,
    sims: 0,
    async submit(req: TxRequest): Promise<SubmitResult> {
      submits.push(req);
      const n = nonce++;
      req.onNonce?.(n);
      return { ok: true, nonce: n, hash: `0x${n}`, gasLimit: 1n, maxFeePerGas: 1n, maxPriorityFeePerGas: 1n };
    },
    async simulate(req: TxRequest): Promise<SimResult> {
      this.sims++;
      // `0x55NNNN` → the count, answered as the decoder expects.
      return { ok: true, returnData: `0x${req.data.slice(4)}` };
    },
    inFlight: () => 0,
  };
}

const mined = (nonce: number): TxEvent => ({
  type: 'mined',
  kind: 'batch',
  nonce,
  activityIds: [],
  hash: '0x1',
  blockNumber: 1,
  blockHash: '0x2',
  status: 'success',
  logs: [],
});

function setup(o: { failing?: Set<number>; holdMaxMs?: number; gasCap?: bigint } = {}) {
  const lane = fakeLane();
  let t = 0;
  const b = createBatcher({
    txm: lane,
    codec: fakeCodec(() => o.failing ?? new Set()),
    wallet: WALLET,
    log,
    now: () => t,
    gasCap: () => o.gasCap ?? 7_500_000n,
    holdMaxMs: o.holdMaxMs ?? 60_000,
  });
  return { lane, b, advance: (ms: number) => (t += ms) };
}

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('the call batcher', () => {
  test('calls submitted together leave in one transaction to the wallet, each with its own kind and ids', async () => {
    const { lane, b } = setup();
    const nonces: number[] = [];
    const reqs = [completeCall(TQ, '1', 'json:{}'), resumeCall(WF, '2', '7'), completeCall(TQ, '3', 'json:{}')];
    const results = await Promise.all(reqs.map((c) => b.submit({ ...c, onNonce: (n) => nonces.push(n) })));
    expect(lane.submits).toHaveLength(1);
    const sent = lane.submits[0] as TxRequest;
    expect(sent.kind).toBe('batch');
    expect(sent.to).toBe(WALLET);
    expect(sent.calls).toEqual([
      { kind: 'complete', activity_ids: ['1'] },
      { kind: 'resume', activity_ids: ['2'] },
      { kind: 'complete', activity_ids: ['3'] },
    ]);
    expect(sent.activityIds).toEqual(['1', '2', '3']);
    expect(sent.data).toBe(`0xee${reqs.map((r) => r.data.slice(2)).join('')}`);
    expect(results.every((r) => r.ok && r.nonce === 0)).toBe(true);
    expect(nonces).toEqual([0, 0, 0]);
    // Never below the calls' worst cases: their gas depends on what is mined before them in the block.
    expect(sent.minGasLimit).toBe(reqs.reduce((s, r) => s + gasGuess(r), 0n));
  });

  test('finishing calls wait while a batch is unmined and leave together once it is mined', async () => {
    const { lane, b } = setup();
    await b.submit(completeCall(TQ, '1', 'json:{}'));
    const later = [b.submit(completeCall(TQ, '2', 'json:{}')), b.submit(resumeCall(WF, '3', '9'))];
    await tick();
    expect(lane.submits).toHaveLength(1);
    expect(b.status()).toEqual({ waiting: 2, unmined: 1 });
    b.onTxEvent(mined(0));
    await Promise.all(later);
    expect(lane.submits).toHaveLength(2);
    expect(lane.submits[1]?.calls?.map((c) => c.activity_ids[0])).toEqual(['2', '3']);
  });

  test('a claim or a heartbeat leaves at once, taking the waiting calls along', async () => {
    const { lane, b } = setup();
    await b.submit(completeCall(TQ, '1', 'json:{}'));
    const waiting = b.submit(completeCall(TQ, '2', 'json:{}'));
    await tick();
    expect(lane.submits).toHaveLength(1);
    await Promise.all([waiting, b.submit(claimCall(TQ, ['5', '6']))]);
    // The claim in a batch of its own (never behind a finishing call's simulation), the complete beside it.
    expect(lane.submits.map((r) => r.calls?.map((c) => c.kind))).toEqual([['complete'], ['claim_batch'], ['complete']]);
    await b.submit({ ...heartbeatCall(TQ, ['5']), priority: true });
    expect(lane.submits).toHaveLength(4);
    expect(lane.submits[3]?.priority).toBe(true);
    // A claim or heartbeat keeps its worst case as the batch's floor.
    expect(lane.submits[1]?.minGasLimit).toBe(claimCall(TQ, ['5', '6']).minGasLimit);
  });

  test('a lost mined event holds nothing longer than holdMaxMs', async () => {
    const { lane, b, advance } = setup({ holdMaxMs: 30 });
    await b.submit(completeCall(TQ, '1', 'json:{}'));
    const p = b.submit(completeCall(TQ, '2', 'json:{}'));
    advance(30);
    await p;
    expect(lane.submits).toHaveLength(2);
  });

  test('one simulation per batch: a call that would fail is refused and left out, the others go', async () => {
    const { lane, b } = setup({ failing: new Set([1]) });
    const reqs = [completeCall(TQ, '1', 'json:{}'), completeCall(TQ, '2', 'json:{}'), resumeCall(WF, '3', '4')];
    const results = await Promise.all(reqs.map((c) => b.submit({ ...c, simulate: true })));
    expect(lane.sims).toBe(1);
    expect(results.map((r) => r.ok)).toEqual([true, false, true]);
    expect(results[1]?.ok === false && results[1].stage).toBe('simulate');
    expect(lane.submits[0]?.calls?.map((c) => c.activity_ids[0])).toEqual(['1', '3']);
  });

  test('the gas cap splits what waits into several batches', async () => {
    const one = gasGuess(claimCall(TQ, ['1']));
    const { lane, b } = setup({ gasCap: one * 2n });
    await Promise.all(['1', '2', '3', '4', '5'].map((id) => b.submit(claimCall(TQ, [id]))));
    // Two claims per batch.
    expect(lane.submits.map((s) => s.calls?.length)).toEqual([2, 2, 1]);
    for (const s of lane.submits) expect(s.minGasLimit ?? 0n).toBeLessThanOrEqual(one * 2n);
  });

  test('a call no longer wanted is withdrawn, not sent', async () => {
    const { lane, b } = setup();
    const [a, c] = await Promise.all([
      b.submit({ ...heartbeatCall(TQ, ['1']), stillWanted: () => false }),
      b.submit(completeCall(TQ, '2', 'json:{}')),
    ]);
    expect(a.ok === false && a.stage).toBe('withdrawn');
    expect(c.ok).toBe(true);
    expect(lane.submits[0]?.calls).toEqual([{ kind: 'complete', activity_ids: ['2'] }]);
  });

  test('simulateMany: one round trip, results per call in order', async () => {
    const { lane, b } = setup({ failing: new Set([0]) });
    const res = await b.simulateMany?.([claimCall(TQ, ['1']), claimCall(TQ, ['2'])]);
    expect(lane.sims).toBe(1);
    expect(res?.map((r) => r.ok)).toEqual([false, true]);
  });
});

describe('a batch event, one per call', () => {
  const calls = [
    { kind: 'complete' as const, activity_ids: ['1'] },
    { kind: 'resume' as const, activity_ids: ['2'] },
    { kind: 'heartbeat' as const, activity_ids: ['3', '4'] },
  ];
  const codec = fakeCodec(() => new Set());
  const failures = (logs: Parameters<BatchCodec['failures']>[0]) => codec.failures(logs, WALLET);

  test('a confirmed batch: each call its own event, the failed one reverted', () => {
    const ev: TxEvent = {
      type: 'confirmed',
      kind: 'batch',
      nonce: 4,
      activityIds: ['1', '2', '3', '4'],
      calls,
      hash: '0xh',
      blockNumber: 9,
      blockHash: '0xb',
      status: 'success',
      gasUsed: 100n,
      logs: [{ address: WALLET, topics: [], data: '1', logIndex: 0 }],
    };
    const out = expandBatchEvent(ev, failures);
    expect(out.map((e) => ('kind' in e ? e.kind : ''))).toEqual(['complete', 'resume', 'heartbeat']);
    expect(out.map((e) => ('activityIds' in e ? e.activityIds : []))).toEqual([['1'], ['2'], ['3', '4']]);
    expect(out.map((e) => (e.type === 'confirmed' ? e.status : ''))).toEqual(['success', 'reverted', 'success']);
    expect(out.every((e) => e.type === 'confirmed' && e.nonce === 4 && e.logs.length === 1)).toBe(true);
    expect(out.some((e) => 'calls' in e)).toBe(false);
  });

  test('a reverted batch reverts every call; other events pass per call; single txs pass as they are', () => {
    const base = { kind: 'batch' as const, nonce: 1, activityIds: ['1', '2', '3', '4'], calls };
    const reverted = expandBatchEvent(
      { ...base, type: 'mined', hash: '0x', blockNumber: 1, blockHash: '0x', status: 'reverted', logs: [] },
      failures,
    );
    expect(reverted.map((e) => (e.type === 'mined' ? e.status : ''))).toEqual(['reverted', 'reverted', 'reverted']);
    const failed = expandBatchEvent(
      { ...base, type: 'failed', error: { code: 'TX_REFUSED', message: 'x', retryable: false } },
      failures,
    );
    expect(failed).toHaveLength(3);
    const single: TxEvent = {
      type: 'reorged',
      kind: 'complete',
      nonce: 2,
      activityIds: ['9'],
      hash: '0x',
      blockNumber: 3,
    };
    expect(expandBatchEvent(single, failures)).toEqual([single]);
  });
});

describe('heartbeats never follow a complete or fail of their activity', () => {
  test('a heartbeat and a complete ready together: the heartbeat batch first, alone, then the complete', async () => {
    const { lane, b } = setup();
    await Promise.all([
      b.submit(completeCall(TQ, '1', 'json:{}')),
      b.submit({ ...heartbeatCall(TQ, ['1', '2']), priority: true }),
    ]);
    expect(lane.submits.map((r) => r.calls?.map((c) => c.kind))).toEqual([['heartbeat'], ['complete']]);
  });

  test('a call unwanted at the turn of its batch is withdrawn; the others leave in the next batch', async () => {
    const lane = fakeLane();
    let ended = false;
    let turns = 0;
    const b = createBatcher({
      txm: {
        ...lane,
        // The lane asks the batch at its turn, as the tx manager does; the activity ends just before the first turn.
        submit: async (req) => {
          turns++;
          ended = true;
          if (req.stillWanted && !req.stillWanted())
            return { ok: false, stage: 'withdrawn', error: { code: 'TX_REFUSED', message: 'w', retryable: false } };
          return await lane.submit(req);
        },
      },
      codec: fakeCodec(() => new Set()),
      wallet: WALLET,
      log,
      now: Date.now,
      gasCap: () => 7_500_000n,
    });
    const [hb, done] = await Promise.all([
      b.submit({ ...heartbeatCall(TQ, ['1']), priority: true, stillWanted: () => !ended }),
      b.submit(completeCall(TQ, '2', 'json:{}')),
    ]);
    expect(hb.ok === false && hb.stage).toBe('withdrawn');
    expect(done.ok).toBe(true);
    expect(turns).toBe(2);
    expect(lane.submits.map((r) => r.calls?.map((c) => c.kind))).toEqual([['complete']]);
  });
});
