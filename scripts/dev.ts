/**
 * `npm run dev`: the main job on the embedded local default, the whole pipeline on one machine:
 *   anvil (1 s blocks, free port) ← reference contracts deployed from account 0 (deterministic addresses =
 *   configs/local.toml), dev worker = account 1, registered and active;
 *   dev subnet-api (storage broker gRPC + signed-URL blob store) with a generated input video;
 *   the example executor (video.preprocess with ffmpeg) on a free port;
 *   wcp (from source, or dist/wcp with --binary) pointed at all three.
 * Demo: 2-step workflows (preprocess to 320x240@15, then preprocess the result again at the spec defaults);
 * more single activities every 15 s. Ctrl-C stops everything it started and prints what the store holds.
 *
 * Flags: --binary, --seconds N (stop by itself after N s), --workflows N (default 2),
 * --noop (use wcp's built-in no-op TEST executor instead of the video executor; no ffmpeg work).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startDevSubnetApi, uploadAsOwner } from './lib/subnet-api/index.ts';
import { generateTestVideo } from '../examples/video-executor/preprocess.ts';
import { freePort, startAnvil } from './lib/anvil.ts';
import { deployStack, enqueueActivities, registerWorker, startWorkflows } from './lib/deploy.ts';

const root = resolve(import.meta.dir, '..');
const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const opt = (name: string, dflt: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};

const say = (msg: string) => process.stderr.write(`\x1b[36m[dev]\x1b[0m ${msg}\n`);
const children: ChildProcess[] = [];

const anvil = await startAnvil({ blockTime: 1 });
say(`anvil on ${anvil.url} (1 s blocks)`);
const deployer = anvil.accounts[0]!;
const worker = anvil.accounts[1]!;
const stack = await deployStack({ rpcUrl: anvil.url, deployerKey: deployer.privateKey, batchExecutor: true });
say(`contracts: ${JSON.stringify(stack.addresses)}`);
await registerWorker(stack, worker.address, 8);
say(`worker ${worker.address} registered and active`);

const devDir = join(root, '.wcp-dev');
rmSync(devDir, { recursive: true, force: true });
mkdirSync(devDir, { recursive: true });
const noop = flag('noop');

// Storage: the dev subnet-api, checking holders and entitlements on the chain, with one seeded input video
// uploaded by the deployer (owner of the queue and starter of the demo workflows), so its work may read it.
const subnetApi = await startDevSubnetApi({
  dataDir: join(devDir, 'blobs'),
  chain: {
    rpcUrl: anvil.url,
    chainId: stack.chainId,
    taskQueue: stack.addresses.taskQueue,
    workflowEngine: stack.addresses.workflowEngine,
  },
});
const videoPath = join(devDir, 'input.mp4');
await generateTestVideo(videoPath, { seconds: 2, width: 640, height: 480 });
await uploadAsOwner({
  endpoint: subnetApi.grpcEndpoint,
  ownerKey: deployer.privateKey,
  chainId: stack.chainId,
  namespace: 'seed',
  key: 'input.mp4',
  bytes: new Uint8Array(await Bun.file(videoPath).arrayBuffer()),
});
say(
  `dev subnet-api: grpc ${subnetApi.grpcEndpoint}, blobs ${subnetApi.httpBase}; seeded blob:seed/input.mp4 (2 s, 640x480)`,
);

// The executor.
const executorPort = await freePort();
if (!noop) {
  const wep = spawn(
    process.execPath,
    [join(root, 'examples', 'video-executor', 'main.ts'), '--port', String(executorPort), '--concurrency', '2'],
    {
      stdio: 'inherit',
      env: { ...process.env, WCP_LOG_FORMAT: process.env.WCP_LOG_FORMAT ?? 'pretty' },
    },
  );
  children.push(wep);
  say(`example executor (video.preprocess) on 127.0.0.1:${executorPort}`);
}

const input = 'json:{"video":"blob:seed/input.mp4","width":320,"height":240,"fps":15}';
const type = noop ? 'echo' : 'video.preprocess';
const workflows = await startWorkflows(stack, {
  queue: 'default',
  count: opt('workflows', 2),
  steps: [{ activityType: type, inputRef: input }, { activityType: type }],
});
say(
  `started ${workflows.length} demo workflows (2 steps: ${type} 320x240@15, then ${type} of its output): first activities ${workflows.map((w) => w.activityId).join(', ')}`,
);

const env = {
  ...process.env,
  ENVIRONMENT: 'local',
  WCP__ETHEREUM__RPC_URL: anvil.url,
  WCP__ETHEREUM__WS_URL: anvil.url.replace(/^http/, 'ws'),
  WCP__STORE__PATH: join(devDir, 'wcp.db'),
  // The main job shows the batch path (EIP-7702): opt-in for now (README "What is not done yet").
  WCP__TX_POLICY__BATCH: 'auto',
  WCP__METRICS__ENABLED: 'false',
  WCP__EXECUTOR__ENDPOINT: `127.0.0.1:${executorPort}`,
  WCP__EXECUTOR__BUILTIN_NOOP_FOR_TESTS: noop ? 'true' : 'false',
  WCP__SUBNET_API__GRPC_ENDPOINT: subnetApi.grpcEndpoint,
  WCP_LOG_FORMAT: process.env.WCP_LOG_FORMAT ?? 'pretty',
};
const useBinary = flag('binary');
const bin = join(root, 'dist', 'wcp');
if (useBinary && !existsSync(bin)) throw new Error('dist/wcp not built: run npm run build first');
const cmd = useBinary ? bin : process.execPath;
const args = useBinary ? ['run'] : [join(root, 'src', 'main.ts'), 'run'];
const wcp = spawn(cmd, args, { env, stdio: 'inherit', cwd: devDir });
children.push(wcp);
say(`wcp started (${useBinary ? 'dist/wcp' : 'from source'}), store ${env.WCP__STORE__PATH}`);

let stopping = false;
const feeder = setInterval(() => {
  if (stopping) return;
  enqueueActivities(stack, { queue: 'default', count: 1, activityType: type, inputRef: input })
    .then((ids) => say(`enqueued activity ${ids.join(', ')}`))
    .catch((e: unknown) => say(`enqueue failed: ${e instanceof Error ? e.message : String(e)}`));
}, 15_000);

async function shutdown(code: number) {
  if (stopping) return;
  stopping = true;
  clearInterval(feeder);
  say('stopping: wcp first (SIGTERM, graceful), then anvil');
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null)));
  stack.destroy();
  await anvil.stop();
  await subnetApi.stop();
  for (const prefix of ['done:', 'inflight:', 'claim_job:']) {
    const scan = spawn(
      process.execPath,
      [join(root, 'src', 'main.ts'), 'db', 'scan', prefix, '--db', env.WCP__STORE__PATH],
      { stdio: 'inherit' },
    );
    await new Promise((r) => scan.once('exit', r));
  }
  say(`blobs written under ${join(devDir, 'blobs')}`);
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));
wcp.on('exit', (code) => {
  if (!stopping) {
    say(`wcp exited with code ${code}`);
    void shutdown(code ?? 1);
  }
});
const seconds = opt('seconds', 0);
if (seconds > 0) setTimeout(() => void shutdown(0), seconds * 1000);
