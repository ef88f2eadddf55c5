/**
 * A storage service that refuses the worker itself, with the compiled binary, anvil and the slow test executor (its
 * type declares an output, so every run needs presigned URLs). wcp starts against the dev subnet-api (checking
 * holders on chain, so the start-up probe gets the expected PERMISSION_DENIED: no "Presign failed" warning); an
 * activity runs; then `subnet_api.grpc_endpoint`'s port is taken by a gRPC server that is not the storage service
 * (UNIMPLEMENTED) and the executor restarts, losing the run. Expected: the claimed activity waits (heartbeated,
 * never failed), new activities are not claimed (`storage_refused` in /status and metrics), /readyz is 503 naming
 * the subnet-api, `wcp doctor` fails with the cause and the fix; once the storage service is back, all complete.
 */
import { expect, test } from 'bun:test';
import { join } from 'node:path';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { freePort } from '../scripts/lib/anvil.ts';
import { type DevSubnetApi, startDevSubnetApi } from '../scripts/lib/subnet-api/index.ts';
import { createLogger } from '../src/internal/logger.ts';
import {
  chainActivity,
  e2eSuite,
  enqueue,
  fixtureEvents,
  killAll,
  STATUS,
  startSlowExecutor,
  type World,
} from './e2e-executor-harness.ts';
import { executorSettings, wcpEnv } from './support/env.ts';
import { until, waitAllCompleted } from './support/wait.ts';
import { logLines, startWcp } from './support/wcp.ts';

let w: World;
const { track, run, box } = e2eSuite(1, (world) => {
  w = world;
});

async function get(port: number, path: string): Promise<{ code: number; text: string }> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(3_000) });
    return { code: res.status, text: await res.text() };
  } catch {
    return { code: 0, text: '' };
  }
}

/** The dev subnet-api on `port`, checking holders on the world's chain. */
function devApi(port: number): Promise<DevSubnetApi> {
  return startDevSubnetApi({
    dataDir: join(w.dir, 'refused-blobs'),
    grpcPort: port,
    logger: createLogger('dev-subnet-api', { level: 'error', json: true, write: () => {} }),
    chain: {
      rpcUrl: w.anvil.url,
      chainId: w.stack.chainId,
      taskQueue: w.stack.addresses.taskQueue,
      workflowEngine: w.stack.addresses.workflowEngine,
    },
  });
}

/** A gRPC server on `port` serving no service at all: every call is UNIMPLEMENTED (e.g. another daemon's port). */
async function notStorage(port: number): Promise<Server> {
  const s = new Server();
  await new Promise<void>((resolve, reject) =>
    s.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())),
  );
  return s;
}

test('a storage service refusing the worker: claims pause, claimed work waits, readyz and doctor say why; then all complete', async () => {
  const me = w.worker();
  const sb = box();
  const storagePort = await freePort();
  const metricsPort = await freePort();
  let api: DevSubnetApi | undefined = await devApi(storagePort);
  let wrong: Server | undefined;
  try {
    let exec = track(await startSlowExecutor({ concurrency: 2, handlerMs: 5_000 }));
    const [first] = await enqueue(w, me.queue, 1, 'test.slow', 'json:{}');
    if (!first) throw new Error('nothing enqueued');
    const env = wcpEnv(me, executorSettings(exec.port, `127.0.0.1:${storagePort}`), {
      WCP__METRICS__ENABLED: 'true',
      WCP__METRICS__LISTEN: `127.0.0.1:${metricsPort}`,
      WCP__SCHEDULER__HEARTBEAT_INTERVAL: '1s',
      WCP__LOG__LEVEL: 'debug',
    });
    const wcp = run(sb, env);
    await exec.waitFor((l) => l.fixture === 'start' && l.activity_id === first, 60_000, 'the first run');

    // The storage port now answers as another gRPC service; the executor restarts and loses the run.
    await api.stop();
    api = undefined;
    wrong = await notStorage(storagePort);
    await killAll(exec);
    exec = track(await startSlowExecutor({ port: exec.port, concurrency: 2, handlerMs: 200 }));
    const status = async () =>
      JSON.parse((await get(metricsPort, '/status')).text || '{}') as {
        claims_paused?: string[];
        executor?: { storage_refused?: { reason: string } | null };
      };
    const refused = await until(status, (s) => Boolean(s.executor?.storage_refused), 30_000, 'storage refused');
    expect(refused.executor?.storage_refused?.reason).toBe('not_storage_service');
    const later = await enqueue(w, me.queue, 2, 'test.slow', 'json:{}');
    await until(
      status,
      (s) => s.claims_paused?.includes('storage_refused') === true,
      30_000,
      'claims paused as storage_refused',
    );
    const ready = await get(metricsPort, '/readyz');
    expect(ready.code).toBe(503);
    const body = JSON.parse(ready.text) as { failing: string[]; checks: Array<Record<string, string>> };
    expect(body.failing).toContain('subnet-api');
    const check = body.checks.find((c) => c.name === 'subnet-api');
    expect(check?.detail).toContain('not the storage service');
    expect(check?.fix).toContain('subnet_api.grpc_endpoint');
    expect((await get(metricsPort, '/metrics')).text).toMatch(/wcp_claims_paused\{reason="storage_refused"\} 1/);

    const doctor = startWcp(sb, ['doctor'], env);
    expect(await doctor.exited).toBe(1);
    expect(doctor.output()).toMatch(
      /FAIL +subnet-api: .*not the storage service \(UNIMPLEMENTED\) \[not_storage_service\]/,
    );
    expect(doctor.output()).toContain('point subnet_api.grpc_endpoint at the subnet-api');

    // A few heartbeat intervals later: the claimed run waits (never failed), the new ones were never claimed.
    await Bun.sleep(3_000);
    expect((await chainActivity(w, first)).status).toBe(STATUS.claimed);
    for (const id of later) expect((await chainActivity(w, id)).status).toBe(STATUS.pending);
    expect(fixtureEvents(exec, 'start')).toEqual([]);

    // The storage service is back on its port: everything completes.
    await new Promise<void>((resolve) => wrong?.tryShutdown(() => resolve()));
    wrong = undefined;
    api = await devApi(storagePort);
    await waitAllCompleted(sb, w.stack, [first, ...later], me.address, 60_000, wcp);
    wcp.proc.kill('SIGTERM');
    expect(await wcp.exited).toBe(0);

    const lines = logLines(wcp);
    // The probe's expected refusal (PERMISSION_DENIED: activity 0 is nobody's) is never a warning.
    expect(lines.filter((l) => l.key === 'wcp-storage-probe' && l.level !== 'debug')).toEqual([]);
    expect(lines.some((l) => l.msg === 'Presign failed.' && l.key === 'wcp-storage-probe')).toBe(true);
    expect(lines.some((l) => l.msg === 'claims paused' && l.reason === 'storage_refused')).toBe(true);
  } finally {
    wrong?.forceShutdown();
    await api?.stop();
  }
}, 150_000);
