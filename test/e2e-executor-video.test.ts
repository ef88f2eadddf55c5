/**
 * Issue 4, done-when #1: the compiled binary, anvil, the dev subnet-api and the example video executor process a
 * generated video through video.preprocess: the outputs are in the blob store under the activity's namespace,
 * their probe matches the requested size, and the activity is completed on chain with their references.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { generateTestVideo } from '../examples/video-executor/preprocess.ts';
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
import { executorSettings, wcpEnv } from './support/env.ts';
import { scan } from './support/store.ts';
import { until } from './support/wait.ts';
import { type Sandbox, sandbox, startWcp, type WcpProcess } from './support/wcp.ts';

let w: World;
let sb: Sandbox;
let exec: Proc | undefined;
let wcp: WcpProcess | undefined;

beforeAll(async () => {
  w = await startWorld(1);
  sb = sandbox();
}, 120_000);
afterAll(async () => {
  wcp?.proc.kill('SIGKILL');
  await killAll(exec);
  await w?.stop();
  sb?.cleanup();
}, 60_000);

test('a generated video goes through video.preprocess end to end', async () => {
  const video = join(w.dir, 'input.mp4');
  await generateTestVideo(video, { seconds: 1, width: 320, height: 240 });
  await w.api.putBlob('seed', 'input.mp4', new Uint8Array(readFileSync(video)));

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
