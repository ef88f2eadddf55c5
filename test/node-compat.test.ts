/**
 * Node compatibility, by running it: the same `src/` bundled for Node (scripts/build-node.ts, packages external)
 * runs under this machine's `node` against anvil: pool worker thread (Piscina), LMDB, ethers, the nonce lane, the
 * lifecycle with the built-in no-op test executor, and `wcp db scan`. 12 activities go claim → heartbeat →
 * complete; the lane matches the chain; SIGTERM exits 0. (Bun is what ships; this keeps the core runtime-neutral.)
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Anvil, startAnvil } from '../scripts/lib/anvil.ts';
import { buildNodeBundle } from '../scripts/build-node.ts';
import { deployStack, enqueueActivities, registerWorker, type Stack } from '../scripts/lib/deploy.ts';
import { expectLaneMatchesChain } from './e2e-lifecycle-lib.ts';
import { activityViews } from './support/chain.ts';
import { LIFECYCLE_SETTINGS, wcpEnv } from './support/env.ts';
import { callKinds, doneRecords, laneRecords } from './support/store.ts';
import { waitDone } from './support/wait.ts';
import { ROOT, type Sandbox, startWcp, type WcpProcess } from './support/wcp.ts';

let anvil: Anvil;
let stack: Stack;
let dir: string;
let sb: Sandbox;
let wcp: WcpProcess | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wcp-node-'));
  // Packages are external to the bundle: Node finds them through this link, as it would in an install.
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  const { main } = await buildNodeBundle(join(dir, 'app'));
  // The sandbox's "binary" is `node <bundle>`: startWcp and wcp db scan run it like the compiled one.
  const bin = join(dir, 'wcp');
  writeFileSync(bin, `#!/bin/sh\nexec node ${JSON.stringify(main)} "$@"\n`);
  chmodSync(bin, 0o755);
  sb = { dir, bin, dbPath: join(dir, 'wcp.db'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  anvil = await startAnvil({ blockTime: 0.5 });
  stack = await deployStack({ rpcUrl: anvil.url, deployerKey: anvil.accounts[0]!.privateKey });
  await registerWorker(stack, anvil.accounts[1]!.address, 16);
}, 60_000);
afterAll(async () => {
  if (wcp && wcp.proc.exitCode === null) wcp.proc.kill('SIGKILL');
  stack?.destroy();
  await anvil?.stop();
  sb?.cleanup();
}, 60_000);

test('the bundle reports the node runtime', () => {
  const r = spawnSync(sb.bin, ['version'], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/^wcp \S+-node \(node \d+\.\d+\.\d+\)/);
});

test('under node: activities are claimed, run by the no-op test executor, completed on chain; SIGTERM exits 0', async () => {
  const ids = (await enqueueActivities(stack, { queue: 'node', count: 12 })).map(String);
  const me = anvil.accounts[1]!;
  wcp = startWcp(
    sb,
    ['run'],
    wcpEnv({ rpcUrl: anvil.url, privateKey: me.privateKey, queue: 'node' }, LIFECYCLE_SETTINGS, {
      WCP__EXECUTOR__NOOP_DELAY: '3s',
    }),
  );
  await wcp.waitFor(/poller started/, 30_000);
  await waitDone(sb, 12, 90_000, () => {
    if (wcp?.proc.exitCode !== null) throw new Error(`wcp (node) exited:\n${wcp?.output().slice(-3000)}`);
  });
  const done = doneRecords(sb);
  expect(done.map((d) => d.activity_id).sort()).toEqual([...ids].sort());
  expect(done.every((d) => d.outcome === 'completed')).toBe(true);
  const views = await activityViews(stack, ids);
  expect(views.every((v) => v.worker.toLowerCase() === me.address.toLowerCase() && v.isCompleted)).toBe(true);
  expect(wcp.output()).toContain('"runtime":"node"');
  wcp.proc.kill('SIGTERM');
  expect(await wcp.exited).toBe(0);
  expect(wcp.output()).not.toContain(me.privateKey.slice(2));
  await expectLaneMatchesChain(sb, anvil.url, me.address);
  // Heartbeats went out while the tasks ran (1 s interval, 3 s tasks), and every step used the lane.
  const kinds = callKinds(laneRecords(sb));
  expect([...kinds].sort()).toEqual(['claim_batch', 'complete', 'heartbeat']);
}, 120_000);
