/**
 * Foundation end to end: the compiled binary, from an empty directory, against anvil with the reference
 * contracts. Poll → claim_job records; inactive wallet → exit 10; bad config → exit 3 naming the field;
 * SIGTERM → exit 0 with a consistent store, and a restart writes no duplicate claim jobs.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type Anvil, startAnvil } from '../scripts/lib/anvil.ts';
import { deployStack, enqueueActivities, registerWorker, type Stack } from '../scripts/lib/deploy.ts';
import { OBSERVE_SETTINGS, wcpEnv } from './support/env.ts';
import { scan } from './support/store.ts';
import { sleep, until } from './support/wait.ts';
import { runWcp, type Sandbox, sandbox, startWcp } from './support/wcp.ts';

let anvil: Anvil;
let stack: Stack;
let sb: Sandbox;

beforeAll(async () => {
  anvil = await startAnvil();
  stack = await deployStack({ rpcUrl: anvil.url, deployerKey: anvil.accounts[0]!.privateKey });
  await registerWorker(stack, anvil.accounts[1]!.address, 8);
  sb = sandbox();
}, 120_000);
afterAll(async () => {
  stack?.destroy();
  await anvil?.stop();
  sb?.cleanup();
}, 60_000);

// Every run is in `scheduler.mode = observe` (OBSERVE_SETTINGS): this file checks discovery and recording only (the
// claim path has its own tests).
describe('wcp binary: foundation', () => {
  test('records claim jobs for available activities; SIGTERM exits 0; restart adds no duplicates', async () => {
    const ids = await enqueueActivities(stack, { queue: 'default', count: 5 });
    const env = wcpEnv({ rpcUrl: anvil.url, privateKey: anvil.accounts[1]!.privateKey }, OBSERVE_SETTINGS);
    const w = startWcp(sb, ['run'], env);
    await w.waitFor(/poller started/);
    const jobs = await until(
      () => scan(sb, 'claim_job:'),
      (r) => r.length >= 5,
      20_000,
      '5 claim jobs',
    );
    expect(jobs.map((j) => j.value.activity_id)).toEqual(ids.map(String));
    expect(jobs.every((j) => j.value.queue_name === 'default' && typeof j.value.created_at_ms === 'number')).toBe(true);
    w.proc.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    expect(w.output()).toContain('supervisor stopped');
    // The key never reaches the output.
    expect(w.output()).not.toContain(anvil.accounts[1]!.privateKey.slice(2));

    const before = scan(sb, 'claim_job:');
    const w2 = startWcp(sb, ['run'], env);
    await w2.waitFor(/poller started/);
    await sleep(1000);
    w2.proc.kill('SIGTERM');
    expect(await w2.exited).toBe(0);
    const after = scan(sb, 'claim_job:');
    expect(after).toEqual(before);
  }, 60_000);

  test('an inactive wallet exits with the distinct code 10', () => {
    const r = runWcp(
      sb,
      ['run'],
      wcpEnv({ rpcUrl: anvil.url, privateKey: anvil.accounts[2]!.privateKey }, OBSERVE_SETTINGS, {
        WCP__STORE__PATH: `${sb.dir}/other.db`,
      }),
    );
    expect(r.code).toBe(10);
    expect(r.stderr).toContain('is not a registered, active worker');
    expect(r.stderr).toContain(anvil.accounts[2]!.address);
  }, 30_000);

  test('a bad config exits 3 and names each bad field', () => {
    const r = runWcp(
      sb,
      ['run'],
      wcpEnv({ rpcUrl: 'not-a-url', privateKey: anvil.accounts[1]!.privateKey }, OBSERVE_SETTINGS, {
        WCP__SCHEDULER__POLL_INTERVAL: 'soon',
      }),
    );
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('ethereum.rpc_url: got "not-a-url"');
    expect(r.stderr).toContain('scheduler.poll_interval: got "soon", expected a duration');
  });

  test('a bad private key is named but never printed', () => {
    const bad = `0x${'ab'.repeat(31)}zz`;
    const r = runWcp(sb, ['config', 'check'], wcpEnv({ privateKey: bad }, OBSERVE_SETTINGS));
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('ethereum.wallet_private_key');
    expect(r.stderr + r.stdout).not.toContain('abababab');
  });

  test('config check prints the resolved config with the key redacted', () => {
    const r = runWcp(
      sb,
      ['config', 'check', '--json'],
      wcpEnv({ privateKey: anvil.accounts[1]!.privateKey }, OBSERVE_SETTINGS),
    );
    expect(r.code).toBe(0);
    const cfg = JSON.parse(r.stdout) as {
      ethereum: { privateKey: string; walletAddress: string };
      scheduler: { pollIntervalMs: number };
    };
    expect(cfg.ethereum.privateKey).toBe('[REDACTED]');
    expect(cfg.ethereum.walletAddress).toBe(anvil.accounts[1]!.address);
    expect(cfg.scheduler.pollIntervalMs).toBe(200);
  });

  test('CLI usage errors exit 2 and name the bad argument', () => {
    const r = runWcp(sb, ['db', 'scan', 'claim_job:', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown option --bogus');
    const r2 = runWcp(sb, ['nope']);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain('Unknown command `nope`');
    const r3 = runWcp(sb, ['version']);
    expect(r3.code).toBe(0);
    expect(r3.stdout).toMatch(/^wcp \d+\.\d+\.\d+/);
  });
});
