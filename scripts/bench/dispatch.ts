/**
 * Group `dispatch`: dispatch_activities_per_s through the real daemon beside grpc_echo_two_process_msgs_per_s.
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
import { captureOutput, jsonLines, ROOT } from '../lib/wcp-process.ts';
import { type BenchGroup, cpuSeconds, type Figure, round, sleep } from './common.ts';
import { type StubDaemon, startStubDaemon, startStubParts } from './stub-daemon.ts';
import { stopChild } from './world.ts';

const WINDOW = 256;
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
    // The echo first, alone: the daemon starts dispatching the stub's endless queue as soon as it runs.
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
      const t0 = performance.now();
      await sleep(10_000);
      const n = stub.completedAt.length - n0;
      const s = (performance.now() - t0) / 1000;
      const c1 = await Promise.all(pids.map(cpuSeconds));
      const rate = n / s;
      const us = (i: number) => round((((c1[i] as number) - (c0[i] as number)) / n) * 1e6, 0);
      const cpu = `CPU per activity: wcp ${us(0)} µs (all threads), executor ${us(1)} µs, bench process (stub chain + dev subnet-api + echo idle) ${us(2)} µs; CPU busy over the window: wcp ${round((((c1[0] as number) - (c0[0] as number)) / s) * 100, 0)}%, executor ${round((((c1[1] as number) - (c0[1] as number)) / s) * 100, 0)}%, bench ${round((((c1[2] as number) - (c0[2] as number)) / s) * 100, 0)}% of one core (2 cores)`;
      ctx.log(`dispatch ${Math.round(rate)}/s; ${cpu}; stub unknown calls ${JSON.stringify(stub.unknown)}`);
      const figures: Figure[] = [
        {
          name: 'dispatch_activities_per_s',
          value: Math.round(rate),
          unit: 'activities/s',
          reference: `grpc_echo_two_process_msgs_per_s ${Math.round(e.rate)} (ratio ${round(rate / e.rate, 3)})`,
          target: 'ratio ≥ 0.5',
          notes: `dist/wcp run (claim mode; max_inflight ${WINDOW}, poll 100 ms × 128, claim_batch 64, tx max_in_flight 1024, receipt_poll 20 ms) against a stub JSON-RPC chain in the bench process (every tx mined on arrival, no EVM; claims, completions via the TaskQueue's rules), bench executor process (${WINDOW} slots, 0 ms tasks), dev subnet-api; completeActivity txs reaching the stub over 10 s after 5 s warm-up: ${n}. ${cpu}`,
        },
        {
          name: 'grpc_echo_two_process_msgs_per_s',
          value: Math.round(e.rate),
          unit: 'round trips/s',
          notes: `grpc-js bidi stream, echo server in its own process, this process writing 64-byte messages with ${WINDOW} outstanding; one message each way per count; 5 s after 1 s warm-up, before the daemon started; ${e.cpu}`,
        },
      ];
      return figures;
    } finally {
      await d?.stop();
      await parts.stop();
    }
  },
};
