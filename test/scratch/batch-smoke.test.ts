import { afterAll, beforeAll, expect, test } from 'bun:test';
import { Wallet } from 'ethers';
import { type Anvil, startAnvil } from '../../scripts/lib/anvil.ts';
import { deployStack, registerWorker, type Stack, startWorkflows } from '../../scripts/lib/deploy.ts';
import { BATCH_EXECUTOR } from '../../src/chain/batch-executor.ts';
import { LIFECYCLE_SETTINGS, wcpEnv } from '../support/env.ts';
import { doneRecords, laneRecords } from '../support/store.ts';
import { waitDone } from '../support/wait.ts';
import { assertRunning, sandbox, startWcp } from '../support/wcp.ts';

let anvil: Anvil;
let stack: Stack;
beforeAll(async () => {
  anvil = await startAnvil({ blockTime: 0.5, accounts: 5 });
  stack = await deployStack({
    rpcUrl: anvil.url,
    deployerKey: anvil.accounts[0]!.privateKey,
    heartbeatTimeoutS: 10,
    batchExecutor: true,
  });
}, 120_000);
afterAll(async () => {
  stack?.destroy();
  await anvil?.stop();
});

test('batch smoke', async () => {
  const worker = anvil.accounts[1]!;
  await registerWorker(stack, worker.address, 64);
  const w0 = new Wallet(worker.privateKey, stack.provider);
  const n = await stack.provider.getTransactionCount(worker.address);
  const auth = await w0.authorize({ address: BATCH_EXECUTOR.address, nonce: n + 1 });
  const tx = await w0.sendTransaction({ type: 4, to: worker.address, authorizationList: [auth], nonce: n });
  await tx.wait();
  console.log('code', await stack.provider.getCode(worker.address));
  await startWorkflows(stack, { queue: 'bq', count: 40, steps: 2, inputRef: 'json:{"n":1}' });
  const sb = sandbox();
  const w = startWcp(
    sb,
    ['run'],
    wcpEnv({ rpcUrl: anvil.url, privateKey: worker.privateKey, queue: 'bq' }, LIFECYCLE_SETTINGS),
  );
  try {
    const done = await waitDone(sb, 80, 120_000, () => assertRunning(w));
    expect(done.done).toBe(80);
    const recs = doneRecords(sb);
    expect(recs.filter((r) => r.outcome === 'completed' && r.resumed === true).length).toBe(80);
    const lane = laneRecords(sb);
    const kinds: Record<string, number> = {};
    for (const r of lane) kinds[r.kind] = (kinds[r.kind] ?? 0) + 1;
    console.log('lane', JSON.stringify(kinds), 'records', lane.length);
  } finally {
    w.proc.kill('SIGTERM');
    await w.exited;
    await Bun.write('/tmp/batch-smoke.log', w.output());
    sb.cleanup();
  }
}, 200_000);
