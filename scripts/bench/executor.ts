/**
 * Issue 4 (executor bridge): dispatch_activities_per_s beside grpc_echo_msgs_per_s, dispatch_ms_p99 at half of
 * max throughput, mem_per_inflight_kb.
 *
 * The chain path is stubbed FOR THE BENCHMARK ONLY: activities are made up here and handed straight to the real
 * bridge (`createExecutorBridge`), which talks real gRPC on loopback to a real SDK executor (`createExecutor`)
 * with a no-op handler; each Completion becomes a durable `done:` record through the real store. Everything runs
 * in this one process (as the echo does), so the figures compare like with like.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createExecutorBridge, type ExecutorBridge } from '../../src/executor/bridge.ts';
import type { TaskSpec, ExecutorEvent } from '../../src/executor/messages.ts';
import { doneKey } from '../../src/store/keys.ts';
import { openStore, type Store } from '../../src/store/store.ts';
import { createExecutor, type Executor } from '../../src/wep/executor.ts';
import { parseActivitySpec } from '../../src/wep/spec.ts';
import {
  type BenchContext,
  type BenchGroup,
  type Figure,
  median,
  percentile,
  quietLogger,
  round,
  sleep,
} from './common.ts';

const NOOP_SPEC = `
name: bench.noop
version: 1
inputs:
  n: { type: integer, minimum: 0, default: 0 }
outputs:
  result: { key: result.json, content_type: application/json, required: false }
`;

const ECHO_PROTO = `
syntax = "proto3";
package bench;
message Msg { string id = 1; bytes payload = 2; }
service Echo { rpc Stream(stream Msg) returns (stream Msg); }
`;

// ------------------------------------------------------------------------------------------ grpc echo

async function grpcEcho(seconds: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'wcp-bench-echo-'));
  const protoPath = join(dir, 'echo.proto');
  writeFileSync(protoPath, ECHO_PROTO);
  const def = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath)) as unknown as {
    bench: { Echo: grpc.ServiceClientConstructor & { service: grpc.ServiceDefinition } };
  };
  const server = new grpc.Server();
  server.addService(def.bench.Echo.service, {
    Stream: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
      call.on('data', (m) => call.write(m));
      call.on('end', () => call.end());
      call.on('error', () => {});
    },
  });
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
  );
  const client = new def.bench.Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const call = (client as unknown as { Stream(): grpc.ClientDuplexStream<unknown, unknown> }).Stream();
  call.on('error', () => {});
  const WINDOW = 256;
  const payload = Buffer.alloc(64, 7);
  let sent = 0;
  let received = 0;
  let counting = false;
  let counted = 0;
  const pump = () => {
    while (sent - received < WINDOW) call.write({ id: String(sent++), payload });
  };
  call.on('data', () => {
    received++;
    if (counting) counted++;
    pump();
  });
  pump();
  await sleep(500); // warm-up
  counting = true;
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const rate = counted / ((performance.now() - t0) / 1000);
  counting = false;
  call.end();
  client.close();
  await new Promise<void>((r) => server.tryShutdown(() => r()));
  rmSync(dir, { recursive: true, force: true });
  return rate;
}

// ------------------------------------------------------------------------------------------ dispatch

interface Rig {
  bridge: ExecutorBridge;
  executor: Executor;
  store: Store;
  credits(): number;
  onCompletion: ((id: string) => void) | null;
  release: Array<() => void>;
  close(): Promise<void>;
}

/** Executor (concurrency `conc`, handler no-op or held until released) + bridge + store, all in this process. */
async function rig(conc: number, hold: boolean): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'wcp-bench-dispatch-'));
  const store = openStore({ path: join(dir, 'wcp.db'), logger: quietLogger('store') });
  const r: Rig = {
    bridge: undefined as unknown as ExecutorBridge,
    executor: undefined as unknown as Executor,
    store,
    credits: () => credits,
    onCompletion: null,
    release: [],
    close: async () => {},
  };
  let credits = 0;
  const executor = createExecutor({
    specs: [parseActivitySpec(NOOP_SPEC, 'bench.noop')],
    handlers: {
      'bench.noop': hold ? () => new Promise((res) => r.release.push(() => res({}))) : async () => ({}),
    },
    concurrency: conc,
    port: 0,
    logger: quietLogger('wep'),
  });
  const { port } = await executor.start();
  let readyResolve!: () => void;
  const ready = new Promise<void>((res) => {
    readyResolve = res;
  });
  const emit = (m: ExecutorEvent) => {
    switch (m.type) {
      case 'state':
        if (m.state === 'ready') readyResolve();
        break;
      case 'credits':
        credits = m.available;
        break;
      case 'completion': {
        const id = m.activity_id;
        void store
          .transact(
            (tx) =>
              tx.put(doneKey(id), {
                activity_id: id,
                outcome: 'completed',
                queue_name: 'bench',
                activity_type: 'bench.noop',
                finished_at_ms: Date.now(),
                result_ref: 'json:{}',
              }),
            { durable: true },
          )
          .then(() => {
            // As the supervisor does once the outcome is durable: the executor may then forget the Completion.
            r.bridge.ackCompletion({ activity_id: id, attempt: m.attempt, accepted: true });
            r.onCompletion?.(id);
          });
        break;
      }
    }
  };
  const bridge = createExecutorBridge({
    endpoint: `127.0.0.1:${port}`,
    maxInflight: conc,
    keepaliveIntervalMs: 2000,
    keepaliveTimeoutMs: 6000,
    reconnectBaseMs: 250,
    reconnectMaxMs: 5000,
    maxMessageBytes: 4 * 1024 * 1024,
    workerAddress: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8',
    logger: quietLogger('bridge'),
    emit,
  });
  bridge.start();
  await ready;
  while (credits === 0) await sleep(5);
  r.bridge = bridge;
  r.executor = executor;
  r.close = async () => {
    for (const f of r.release) f();
    await bridge.stop();
    await executor.stop(1000);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return r;
}

let seq = 1;
function task(): TaskSpec {
  return {
    activity_id: String(seq++),
    activity_type: 'bench.noop',
    input_ref: 'json:{"n":1}',
    queue_name: 'bench',
    deadline_unix_ms: Date.now() + 3_600_000,
    attempt: 1,
  };
}

/** Closed loop: keep the executor full; activities/s through assign → completion → durable done:. */
async function maxDispatch(conc: number, seconds: number): Promise<number> {
  const r = await rig(conc, false);
  let done = 0;
  let inflight = 0;
  let counting = false;
  const fill = () => {
    while (inflight < conc) {
      inflight++;
      void r.bridge.assign(task());
    }
  };
  r.onCompletion = () => {
    inflight--;
    if (counting) done++;
    fill();
  };
  fill();
  await sleep(1000); // warm-up
  counting = true;
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const rate = done / ((performance.now() - t0) / 1000);
  counting = false;
  r.onCompletion = () => {};
  await sleep(200);
  await r.close();
  return rate;
}

/** Open loop at `rate`/s: latency from assign to the durable done: record. */
async function pacedDispatch(
  conc: number,
  rate: number,
  seconds: number,
): Promise<{ samples: number[]; achieved: number; dropped: number }> {
  const r = await rig(conc, false);
  const started = new Map<string, number>();
  const samples: number[] = [];
  r.onCompletion = (id) => {
    const t = started.get(id);
    if (t !== undefined) {
      samples.push(performance.now() - t);
      started.delete(id);
    }
  };
  const t0 = performance.now();
  let issued = 0;
  let dropped = 0;
  while (performance.now() - t0 < seconds * 1000) {
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    while (issued < due) {
      issued++;
      if (started.size >= conc) {
        dropped++; // the bridge would refuse it (max_inflight): count, do not queue
        continue;
      }
      const t = task();
      started.set(t.activity_id, performance.now());
      void r.bridge.assign(t);
    }
    await sleep(2);
  }
  const wait = performance.now();
  while (started.size > 0 && performance.now() - wait < 5000) await sleep(10);
  const achieved = samples.length / seconds;
  await r.close();
  return { samples, achieved, dropped };
}

function heapMb(): number {
  return process.memoryUsage().heapUsed / 1024 / 1024;
}
function rssMbSelf(): number {
  return process.memoryUsage().rss / 1024 / 1024;
}

/** Holds `n` tasks in a handler that never returns until released; memory growth per held task. */
async function memPerInflight(n: number): Promise<{ heapKb: number; rssKb: number }> {
  const r = await rig(n, true);
  Bun.gc(true);
  await sleep(200);
  Bun.gc(true);
  const heap0 = heapMb();
  const rss0 = rssMbSelf();
  for (let i = 0; i < n; i++) void r.bridge.assign(task());
  const deadline = Date.now() + 30_000;
  while (r.release.length < n && Date.now() < deadline) await sleep(20);
  await sleep(300);
  Bun.gc(true);
  await sleep(100);
  Bun.gc(true);
  const heap1 = heapMb();
  const rss1 = rssMbSelf();
  const held = r.release.length;
  await r.close();
  return { heapKb: ((heap1 - heap0) * 1024) / held, rssKb: ((rss1 - rss0) * 1024) / held };
}

export const executor: BenchGroup = {
  name: 'executor',
  issue: 4,
  async run(ctx: BenchContext) {
    const figures: Figure[] = [];
    const echo = await grpcEcho(4);
    ctx.log(`grpc echo ${Math.round(echo)} msg/s`);
    const CONC = 64;
    const max = await maxDispatch(CONC, 5);
    ctx.log(`dispatch max ${Math.round(max)} activities/s`);
    const paced = await pacedDispatch(CONC, max / 2, 5);
    ctx.log(
      `paced at ${Math.round(max / 2)}/s: achieved ${Math.round(paced.achieved)}/s, p50 ${round(median(paced.samples))} ms, dropped ${paced.dropped}`,
    );
    const mem = await memPerInflight(2000);
    ctx.log(`mem per in-flight: heap ${round(mem.heapKb)} KB, rss ${round(mem.rssKb)} KB`);
    figures.push({
      name: 'grpc_echo_msgs_per_s',
      value: Math.round(echo),
      unit: 'msg/s',
      reference: '~38000 (Bun, 2-core box)',
      notes:
        'grpc-js bidi echo on loopback, one stream, 64-byte protobuf messages, 256 in flight, server and client in this process; 4 s',
    });
    figures.push({
      name: 'dispatch_activities_per_s',
      value: Math.round(max),
      unit: 'activities/s',
      reference: `≥ half of grpc_echo_msgs_per_s = ${Math.round(echo / 2)} (ratio ${round(max / echo, 3)})`,
      notes: `createExecutorBridge → real loopback TaskStream → createExecutor (no-op handler, concurrency ${CONC}) → Completion → store.transact(done:, durable) in one process; chain path stubbed for the benchmark only; closed loop keeping ${CONC} in flight, 5 s`,
    });
    figures.push({
      name: 'dispatch_ms_p99',
      value: round(percentile(paced.samples, 99)),
      unit: 'ms',
      notes: `assign → durable done: at ${Math.round(max / 2)} activities/s offered (half of max), open loop 5 s, ${paced.samples.length} samples, p50 ${round(median(paced.samples))} ms, ${paced.dropped} refused for max_inflight`,
    });
    figures.push({
      name: 'mem_per_inflight_kb',
      value: round(mem.heapKb),
      unit: 'KB/task (JS heap)',
      notes: `2000 tasks held by a handler that does not return; heapUsed growth after GC / tasks, bridge + executor SDK side together (one process); RSS growth ${round(mem.rssKb)} KB/task`,
    });
    return figures;
  },
};
