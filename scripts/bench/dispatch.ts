/**
 * Group `dispatch`: wcp_cpu_ms_per_activity through the real daemon beside the floor of what one activity needs,
 * with grpc_echo_two_process_msgs_per_s as a reference line.
 *  - floor (this process, before anything else runs): N times one ABI encoding of `completeActivity` (the daemon's
 *    encoder), one durable store commit of an inflight record (the daemon's store, its own file), and 1/k of an
 *    EIP-1559 transaction signature (the wallet's key; a batch of k = FLOOR_BATCH calls per transaction); CPU of
 *    this process (all threads) per iteration.
 *  - echo: grpc-js bidi stream between two processes (scripts/bench/echo-proc.ts serves, this process sends),
 *    64-byte messages, one message each way per round trip, 256 outstanding, 5 s after 1 s warm-up.
 *  - dispatch: dist/wcp run (supervisor, worker threads, gRPC TaskStream) against a STUB chain
 *    (scripts/bench/stub-chain.ts: an endless queue, every tx mined on arrival, no EVM), the bench executor in its
 *    own process (256 slots, 0 ms tasks); completions counted by the stub as completeActivity txs arrive,
 *    10 s after 5 s of warm-up. CPU seconds of each process over the window say where the time goes.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { Wallet } from 'ethers';
import { taskQueueIface } from '../../src/chain/abi.ts';
import { encodeCall } from '../../src/chain/abi-fast.ts';
import { inflightKey } from '../../src/store/keys.ts';
import { openStore } from '../../src/store/store.ts';
import { captureOutput, jsonLines, ROOT } from '../lib/wcp-process.ts';
import { type BenchGroup, cpuSeconds, type Figure, quietLogger, round, sleep } from './common.ts';
import { STUB_ADDRESSES } from './stub-chain.ts';
import { type StubDaemon, startStubDaemon, startStubParts } from './stub-daemon.ts';
import { stopChild } from './world.ts';

const WINDOW = 256;
/** Calls per transaction assumed by the floor: one signature is shared by this many activities. */
const FLOOR_BATCH = 32;
const FLOOR_ITERATIONS = 300;

/**
 * The CPU one activity needs at minimum, measured here (see the file comment): µs of this process's CPU (all
 * threads: the store's write thread too) per iteration, and each part's.
 */
async function floor(dir: string, privateKey: string): Promise<{ us: number; parts: string }> {
  const store = openStore({ path: join(dir, 'floor.db'), logger: quietLogger('floor-store') });
  const wallet = new Wallet(privateKey);
  const queue = STUB_ADDRESSES.taskQueue;
  const cpuUs = () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  const parts = { encode: 0, commit: 0, sign: 0 };
  try {
    for (let i = 0; i < FLOOR_ITERATIONS; i++) {
      const id = String(1_000_000 + i);
      let t = cpuUs();
      const data = encodeCall(taskQueueIface, 'completeActivity', [id, `json:{"out":"bench/${id}/out.bin"}`]);
      parts.encode += cpuUs() - t;
      t = cpuUs();
      const now = Date.now();
      await store.transact(
        (tx) =>
          tx.put(inflightKey(id), {
            activity_id: id,
            state: 'completing',
            queue_name: 'bench',
            activity_type: 'bench',
            input_ref: `bench/${id}/in.bin`,
            expires_at_s: 2_000_000_000,
            heartbeat_timeout_s: 30,
            result_ref: `json:{"out":"bench/${id}/out.bin"}`,
            dispatch_attempts: 1,
            created_at_ms: now,
            updated_at_ms: now,
          }),
        { durable: true },
      );
      parts.commit += cpuUs() - t;
      if (i % FLOOR_BATCH === 0) {
        t = cpuUs();
        await wallet.signTransaction({
          type: 2,
          chainId: 31337n,
          nonce: i,
          to: queue,
          data,
          gasLimit: 5_000_000n,
          maxFeePerGas: 2_000_000_000n,
          maxPriorityFeePerGas: 1_000_000_000n,
        });
        parts.sign += cpuUs() - t;
      }
    }
  } finally {
    await store.close();
  }
  const per = (x: number) => x / FLOOR_ITERATIONS;
  return {
    us: per(parts.encode + parts.commit + parts.sign),
    parts: `encode ${round(per(parts.encode), 1)} µs + durable commit ${round(per(parts.commit), 1)} µs + signature/${FLOOR_BATCH} ${round(per(parts.sign), 1)} µs`,
  };
}
const ECHO_PROTO = `
syntax = "proto3";
package bench;
message Msg { string id = 1; bytes payload = 2; }
service Echo { rpc Stream(stream Msg) returns (stream Msg); }
`;

async function echo(dir: string): Promise<{ rate: number; cpu: string }> {
  const protoPath = join(dir, 'echo.proto');
  writeFileSync(protoPath, ECHO_PROTO);
  const child: ChildProcess = spawn(process.execPath, [join(ROOT, 'scripts', 'bench', 'echo-proc.ts'), protoPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = captureOutput(child);
  try {
    let port = 0;
    const deadline = Date.now() + 20_000;
    while (!port) {
      const r = jsonLines(out.output()).find((l) => l.bench === 'ready');
      if (r) port = Number(r.port);
      else if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`echo server did not start: ${out.output()}`);
      else await sleep(20);
    }
    const def = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath)) as unknown as {
      bench: { Echo: grpc.ServiceClientConstructor };
    };
    const client = new def.bench.Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const call = (client as unknown as { Stream(): grpc.ClientDuplexStream<unknown, unknown> }).Stream();
    call.on('error', () => {});
    const payload = Buffer.alloc(64, 7);
    let sent = 0;
    let received = 0;
    const pump = () => {
      while (sent - received < WINDOW) call.write({ id: String(sent++), payload });
    };
    call.on('data', () => {
      received++;
      pump();
    });
    pump();
    await sleep(1000);
    const r0 = received;
    const c0 = [await cpuSeconds(process.pid), await cpuSeconds(child.pid as number)];
    const t0 = performance.now();
    await sleep(5000);
    const n = received - r0;
    const s = (performance.now() - t0) / 1000;
    const c1 = [await cpuSeconds(process.pid), await cpuSeconds(child.pid as number)];
    call.end();
    client.close();
    const us = (i: number) => round((((c1[i] as number) - (c0[i] as number)) / n) * 1e6, 1);
    return { rate: n / s, cpu: `CPU per message: client ${us(0)} µs, server ${us(1)} µs` };
  } finally {
    await stopChild(child, 'SIGTERM', 3000);
  }
}

export const dispatch: BenchGroup = {
  name: 'dispatch',
  issue: 12,
  async run(ctx) {
    const parts = await startStubParts(WINDOW);
    const { stub, exec } = parts;
    // The floor and the echo first, alone: the daemon starts dispatching the stub's endless queue as soon as it runs.
    const fl = await floor(parts.dir, parts.wallet.privateKey);
    ctx.log(`floor ${round(fl.us, 1)} µs per activity (${fl.parts})`);
    let d: StubDaemon | undefined;
    try {
      const e = await echo(parts.dir);
      ctx.log(`echo ${Math.round(e.rate)} msg/s; ${e.cpu}`);
      d = startStubDaemon(parts, WINDOW);
      const { w } = d;
      await d.firstCompletion();
      await sleep(5000);
      const pids = [w.proc.pid as number, exec.proc.pid as number, process.pid];
      const c0 = await Promise.all(pids.map(cpuSeconds));
      const n0 = stub.completedAt.length;
      const calls0 = { ...stub.counts };
      const t0 = performance.now();
      await sleep(10_000);
      const n = stub.completedAt.length - n0;
      const s = (performance.now() - t0) / 1000;
      const c1 = await Promise.all(pids.map(cpuSeconds));
      const rpcPerActivity = Object.entries(stub.counts)
        .map(([m, c]) => [m, (c - (calls0[m] ?? 0)) / n] as const)
        .filter(([, c]) => c > 0)
        .sort((a, b) => b[1] - a[1])
        .map(([m, c]) => `${m} ${round(c, 2)}`)
        .join(', ');
      const rate = n / s;
      const us = (i: number) => round((((c1[i] as number) - (c0[i] as number)) / n) * 1e6, 0);
      const cpu = `CPU per activity: wcp ${us(0)} µs (all threads), executor ${us(1)} µs, bench process (stub chain + dev subnet-api + echo idle) ${us(2)} µs; CPU busy over the window: wcp ${round((((c1[0] as number) - (c0[0] as number)) / s) * 100, 0)}%, executor ${round((((c1[1] as number) - (c0[1] as number)) / s) * 100, 0)}%, bench ${round((((c1[2] as number) - (c0[2] as number)) / s) * 100, 0)}% of one core (2 cores)`;
      ctx.log(
        `dispatch ${Math.round(rate)}/s; ${cpu}; RPC calls per activity: ${rpcPerActivity}; stub unknown calls ${JSON.stringify(stub.unknown)}`,
      );
      const figures: Figure[] = [
        {
          name: 'wcp_cpu_ms_per_activity',
          value: round(us(0) / 1000, 2),
          unit: 'ms/activity',
          reference: `floor ${round(fl.us / 1000, 3)} ms/activity (${fl.parts}; measured in this process, ${FLOOR_ITERATIONS} iterations)`,
          target: '≤ 3 ms',
          notes: `CPU of the dist/wcp process (all threads) per completeActivity tx reaching the stub, over 10 s after 5 s warm-up: ${n} completions, ${Math.round(rate)} activities/s. dist/wcp run (claim mode; max_inflight ${WINDOW}, poll 100 ms × 128, claim_batch 64, tx max_in_flight 1024, receipt_poll 20 ms) against a stub JSON-RPC chain in the bench process (every tx mined on arrival, no EVM; claims, completions via the TaskQueue's rules), bench executor process (${WINDOW} slots, 0 ms tasks), dev subnet-api. The floor is what one activity cannot do without: its complete's calldata, one durable commit of its record, and its share of one signature when ${FLOOR_BATCH} calls share a transaction (the storage presign requests the executor makes are signed too, one signature each, not counted in it). ${cpu}`,
        },
        {
          name: 'grpc_echo_two_process_msgs_per_s',
          value: Math.round(e.rate),
          unit: 'round trips/s',
          notes: `A reference line (gRPC's own cost between two processes, no lifecycle): grpc-js bidi stream, echo server in its own process, this process writing 64-byte messages with ${WINDOW} outstanding; one message each way per count; 5 s after 1 s warm-up, before the daemon started; ${e.cpu}`,
        },
      ];
      return figures;
    } finally {
      await d?.stop();
      await parts.stop();
    }
  },
};
