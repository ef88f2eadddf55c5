/**
 * Issue 4, done-when #1: the compiled binary, anvil, the dev subnet-api and the example video executor process a
 * generated video through video.preprocess: the outputs are in the blob store under the activity's namespace,
 * their probe matches the requested size, and the activity is completed on chain with their references.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { generateTestVideo } from '../examples/video-executor/preprocess.ts';
import { uploadAsOwner } from '../scripts/lib/subnet-api/index.ts';
import {
  chainActivity,
  enqueue,
  killAll,
  type Proc,
  STATUS,
  startVideoExecutor,
  startWorld,
  type World,
} from './e2e-executor-harness.ts';
import { Contract, NonceManager, Wallet } from 'ethers';
import { eventArgs, startWorkflows } from '../scripts/lib/deploy.ts';
import { TASK_QUEUE_ABI, WORKFLOW_ENGINE_ABI } from '../src/chain/abi.ts';
import { executorSettings, wcpEnv } from './support/env.ts';
import { scan } from './support/store.ts';
import { until } from './support/wait.ts';
import { type Sandbox, sandbox, startWcp, type WcpProcess } from './support/wcp.ts';

let w: World;
let sb: Sandbox;
let exec: Proc | undefined;
let wcp: WcpProcess | undefined;
let wcp2: WcpProcess | undefined;
let sb2: Sandbox | undefined;

/** Generates the input video and has the owner upload it to `seed` (once per file). */
let seeded: Promise<void> | undefined;
function seedVideo(): Promise<void> {
  seeded ??= (async () => {
    const video = join(w.dir, 'input.mp4');
    await generateTestVideo(video, { seconds: 1, width: 320, height: 240 });
    // The owner (the deployer: TaskQueue owner, so owner of standalone activities) seeds with its own signature.
    await uploadAsOwner({
      endpoint: w.api.grpcEndpoint,
      ownerKey: w.anvil.accounts[0]!.privateKey,
      chainId: w.stack.chainId,
      namespace: 'seed',
      key: 'input.mp4',
      bytes: new Uint8Array(readFileSync(video)),
    });
  })();
  return seeded;
}

beforeAll(async () => {
  w = await startWorld(2);
  sb = sandbox();
}, 120_000);
afterAll(async () => {
  wcp?.proc.kill('SIGKILL');
  wcp2?.proc.kill('SIGKILL');
  sb2?.cleanup();
  await killAll(exec);
  await w?.stop();
  sb?.cleanup();
}, 60_000);

test('a generated video goes through video.preprocess end to end', async () => {
  await seedVideo();
  const me = w.worker();
  exec = await startVideoExecutor();
  const [id] = await enqueue(
    w,
    me.queue,
    1,
    'video.preprocess',
    'json:{"video":"blob:seed/input.mp4","width":160,"height":120,"fps":10}',
  );
  if (id === undefined) throw new Error('no activity id');
  wcp = startWcp(sb, ['run'], wcpEnv(me, executorSettings(exec.port, w.api.grpcEndpoint)));

  const done = await until(
    () => scan(sb, 'done:'),
    (r) => r.length >= 1,
    60_000,
    'a done: record',
  );
  expect(done).toHaveLength(1);
  expect(done[0]?.value).toMatchObject({ activity_id: id, outcome: 'completed', activity_type: 'video.preprocess' });

  // The outputs are in the blob store, in the activity's own namespace.
  for (const key of ['video.mp4', 'thumbnail.jpg', 'probe.json']) {
    const p = w.api.blobPath(id, key);
    expect(existsSync(p)).toBe(true);
    expect(statSync(p).size).toBeGreaterThan(0);
  }
  const probe = JSON.parse(readFileSync(w.api.blobPath(id, 'probe.json'), 'utf8')) as {
    streams?: Array<Record<string, unknown>>;
  };
  const vstream = probe.streams?.find((s) => s.codec_type === 'video');
  expect(vstream).toMatchObject({ width: 160, height: 120 });
  expect(String(vstream?.avg_frame_rate ?? vstream?.r_frame_rate)).toMatch(/^10(\/1)?$/);

  // Completed on chain, by this worker, with the blob references as its result.
  const a = await chainActivity(w, id);
  expect(a.status).toBe(STATUS.completed);
  expect(a.isCompleted).toBe(true);
  expect(a.worker.toLowerCase()).toBe(me.address.toLowerCase());
  const refs = JSON.parse(a.resultRef.replace(/^json:/, '')) as Record<string, string>;
  expect(refs).toEqual({
    video: `blob:${id}/video.mp4`,
    thumbnail: `blob:${id}/thumbnail.jpg`,
    probe: `blob:${id}/probe.json`,
  });
  expect(done[0]?.value.result_ref).toBe(a.resultRef);

  expect(scan(sb, 'inflight:')).toEqual([]);
  wcp.proc.kill('SIGTERM');
  expect(await wcp.exited).toBe(0);
}, 120_000);

test("the demo workflow (step 1 reads the owner's seed, step 2 step 1's outputs) passes; a stranger's workflow naming step 1's output as its input is refused", async () => {
  await seedVideo();
  const me = w.worker();
  exec ??= await startVideoExecutor();
  const [wf] = await startWorkflows(w.stack, {
    queue: me.queue,
    count: 1,
    steps: [
      {
        activityType: 'video.preprocess',
        inputRef: 'json:{"video":"blob:seed/input.mp4","width":160,"height":120,"fps":10}',
      },
      { activityType: 'video.preprocess' },
    ],
  });
  if (wf === undefined) throw new Error('no workflow');
  const step1 = String(wf.activityId);
  // A stranger (no role on chain) starts a workflow reading the owner's step-1 output.
  const stranger = new NonceManager(new Wallet(w.anvil.accounts[5]!.privateKey, w.stack.provider));
  const engine = new Contract(w.stack.addresses.workflowEngine, WORKFLOW_ENGINE_ABI, stranger);
  const tx = await (engine.startWorkflow as (...a: unknown[]) => Promise<{ wait(): Promise<{ logs: never[] }> }>)(
    me.queue,
    [['video.preprocess', `json:{"video":"blob:${step1}/video.mp4","width":160,"height":120,"fps":10}`, 0]],
  );
  const tq = new Contract(w.stack.addresses.taskQueue, TASK_QUEUE_ABI).interface;
  const strangerId = String(
    eventArgs(tq, (await tx.wait()).logs, w.stack.addresses.taskQueue, 'ActivityEnqueued')[0]?.activityId,
  );

  sb2 = sandbox();
  wcp2 = startWcp(sb2, ['run'], wcpEnv(me, executorSettings(exec.port, w.api.grpcEndpoint)));
  const box = sb2;
  const done = await until(
    () => scan(box, 'done:'),
    (r) => r.length >= 3,
    100_000,
    'three done: records (two workflow steps, the stranger)',
  );
  const byId = new Map(done.map((d) => [String(d.value.activity_id), d.value]));
  expect(byId.get(step1)).toMatchObject({ outcome: 'completed' });
  const step2 = [...byId.keys()].find((id) => id !== step1 && id !== strangerId);
  if (step2 === undefined) throw new Error('no step 2 record');
  expect(byId.get(step2)).toMatchObject({ outcome: 'completed' });
  expect(existsSync(w.api.blobPath(step2, 'video.mp4'))).toBe(true);
  // Step 2 read step 1's output through a URL the subnet-api granted for it.
  expect(w.api.presignLog().some((l) => l.acting === step2 && l.namespace === step1 && l.outcome === 'granted')).toBe(
    true,
  );

  // The stranger's activity did not complete, and wcp never asked the subnet-api for step 1's objects for it.
  expect(byId.get(strangerId)?.outcome).not.toBe('completed');
  expect((await chainActivity(w, strangerId)).status).not.toBe(STATUS.completed);
  expect(w.api.presignLog().filter((l) => l.acting === strangerId && l.namespace === step1)).toEqual([]);
  wcp2.proc.kill('SIGTERM');
  expect(await wcp2.exited).toBe(0);
}, 150_000);
