/**
 * The other process of `grpc_echo_two_process_msgs_per_s`: a grpc-js bidi echo server (each message written back
 * as it arrives). Prints `{"bench":"ready","port":N}` once listening.
 *
 *   bun scripts/bench/echo-proc.ts PROTO_PATH
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const protoPath = process.argv[2];
if (!protoPath) throw new Error('usage: echo-proc.ts PROTO_PATH');
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
process.stdout.write(`${JSON.stringify({ bench: 'ready', port })}\n`);
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
