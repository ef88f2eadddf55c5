/**
 * The CLI surface README.md names (commands, flags, env variables, exit codes) through the compiled binary from an
 * empty sandbox; what other e2e files drive is not repeated. `docs/cli-coverage.md` maps each item to its test.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wallet } from 'ethers';
import { type Anvil, freePort, startAnvil } from '../scripts/lib/anvil.ts';
import { deployStack, enqueueActivities, registerWorker, type Stack } from '../scripts/lib/deploy.ts';
import { LIFECYCLE_SETTINGS, OBSERVE_SETTINGS, wcpEnv } from './support/env.ts';
import {
  finishSandbox,
  linesWith,
  logLines,
  runWcp,
  type Sandbox,
  sandbox,
  startWcp,
  type WcpProcess,
} from './support/wcp.ts';

/** anvil's dev account #1, the embedded local config's key (a public TEST key). */
const DEV_KEY = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d';
const DEV_ADDRESS = new Wallet(DEV_KEY).address;

let sb: Sandbox;
const procs: WcpProcess[] = [];
let metricsPort = 0;

beforeAll(async () => {
  sb = sandbox();
  metricsPort = await freePort(); // nothing listens there: `wcp status` finds no daemon
});
afterAll(() => finishSandbox('e2e-cli', sb, procs));

/** A file in the sandbox, owner-only unless `mode` says otherwise. */
function put(name: string, text: string, mode = 0o600): string {
  const p = join(sb.dir, name);
  writeFileSync(p, text);
  chmodSync(p, mode);
  return p;
}

/** `wcp <args>` in the sandbox with `input` on stdin (runWcp has no stdin). */
function runWithInput(args: string[], input: string) {
  const r = spawnSync(sb.bin, args, {
    cwd: sb.dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: sb.dir, TMPDIR: tmpdir() },
    input,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The resolved config `config check --json` prints. */
function resolved(env: Record<string, string>, args: string[] = []): Record<string, Record<string, unknown>> {
  const r = runWcp(sb, ['config', 'check', '--json', ...args], env);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, Record<string, unknown>>;
}

describe('wcp CLI: commands and flags', () => {
  test('wcp --version and -V print what wcp version prints, exit 0', () => {
    const v = runWcp(sb, ['version']);
    expect(v.code).toBe(0);
    for (const flag of ['--version', '-V']) {
      const r = runWcp(sb, [flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(v.stdout);
    }
    expect(v.stdout).toMatch(/^wcp \d+\.\d+\.\d+.*\ncommit: .+\ntarget: .+\nbuilt: .+\n$/);
  }, 60_000);

  test('wcp help [command] and wcp <command> --help print usage, exit 0; bare wcp prints usage, exit 2', () => {
    const top = runWcp(sb, ['help']);
    expect(top.code).toBe(0);
    for (const cmd of ['run', 'status', 'doctor', 'db', 'config', 'key', 'version']) expect(top.stdout).toContain(cmd);
    const help = runWcp(sb, ['help', 'db', 'scan']);
    const flag = runWcp(sb, ['db', 'scan', '--help']);
    expect(help.code).toBe(0);
    expect(flag.code).toBe(0);
    expect(help.stdout).toBe(flag.stdout);
    for (const f of ['--json', '--limit', '--db', '--config']) expect(flag.stdout).toContain(f);
    expect(runWcp(sb, ['key', 'import', '--help']).stdout).toContain('--key-file');
    expect(runWcp(sb, ['--help']).stdout).toBe(top.stdout);
    const bare = runWcp(sb, []);
    expect(bare.code).toBe(2);
    expect(bare.stdout).toContain('USAGE');
  }, 60_000);

  test('wcp help run lists the environment overrides, the signals and every exit code', () => {
    const r = runWcp(sb, ['help', 'run']);
    expect(r.code).toBe(0);
    expect(runWcp(sb, ['run', '--help']).stdout).toBe(r.stdout);
    for (const s of [
      '--config',
      'WCP__SECTION__KEY',
      'WCP_LOG_LEVEL',
      'WCP_CONFIG',
      'ENVIRONMENT',
      'SIGTERM',
      'SIGHUP',
    ])
      expect(r.stdout).toContain(s);
    for (const code of [0, 1, 2, 3, 4, 5, 6, 10, 11, 130]) expect(r.stdout).toMatch(new RegExp(`^ +${code} +\\S`, 'm'));
  }, 60_000);

  test('config example prints the annotated example config, embedded in the binary', () => {
    const r = runWcp(sb, ['config', 'example']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(readFileSync(join(import.meta.dir, '..', 'configs', 'example.toml'), 'utf8'));
  }, 60_000);

  test('an unknown flag on run, or an extra argument, exits 2 naming it', () => {
    const r = runWcp(sb, ['run', '--confg', 'x.toml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown option --confg');
    const extra = runWcp(sb, ['config', 'check', 'extra']);
    expect(extra.code).toBe(2);
    expect(extra.stderr).toContain('unexpected argument "extra"');
  }, 60_000);

  test('--config FILE on run, status, doctor, db scan and config check: a missing file exits 3 naming it', () => {
    for (const cmd of [['run'], ['status'], ['doctor'], ['db', 'scan', 'lane:'], ['config', 'check']]) {
      const r = runWcp(sb, [...cmd, '--config', 'missing.toml']);
      expect(r.code, `${cmd.join(' ')}: ${r.stderr}`).toBe(3);
      expect(r.stderr).toContain(`config file not found: ${join(sb.dir, 'missing.toml')}`);
    }
  }, 60_000);

  test('config check prints TOML that loads again with --config; --json the resolved values', () => {
    const toml = runWcp(sb, ['config', 'check'], { WCP__SCHEDULER__POLL_INTERVAL: '2s' });
    expect(toml.code).toBe(0);
    expect(toml.stdout).toMatch(/\[scheduler\][^[]*poll_interval = "2s"/);
    expect(toml.stdout).not.toContain(DEV_KEY.slice(2)); // the key is hidden
    // The hidden key is given again by env; every other value comes from the printed file.
    const file = put('printed.toml', toml.stdout);
    const back = resolved({ WCP__ETHEREUM__WALLET_PRIVATE_KEY: DEV_KEY }, ['--config', file]);
    expect(back.scheduler?.pollIntervalMs).toBe(2000);
    expect(back.source).toBe(file as never);
  }, 60_000);

  test('db scan PREFIX --limit N --db FILE --json; --limit 0 exits 2; --config FILE names the store', async () => {
    const w = startWcp(sb, ['run'], { WCP__ETHEREUM__RPC_URL: 'http://127.0.0.1:1', WCP__METRICS__ENABLED: 'false' });
    procs.push(w);
    await w.waitFor(/chain not reachable yet/); // the store exists now (opened before the chain is asked)
    w.proc.kill('SIGKILL');
    await w.exited;
    // An empty store: the scan prints nothing and says so on stderr; a limit that is not a count is refused.
    const all = runWcp(sb, ['db', 'scan', 'lane:', '--db', sb.dbPath, '--limit', '2']);
    expect(all.code).toBe(0);
    expect(all.stderr).toContain(`0 record(s) under "lane:" in ${sb.dbPath}`);
    const bad = runWcp(sb, ['db', 'scan', 'lane:', '--limit', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--limit must be a positive integer');
    const cfg = put('store.toml', `[ethereum]\nwallet_private_key = "${DEV_KEY}"\n[store]\npath = "elsewhere.db"\n`);
    const other = runWcp(sb, ['db', 'scan', 'lane:', '--json', '--config', cfg]);
    expect(other.code).toBe(4); // no store at elsewhere.db: the store cannot open
    expect(other.stderr).toContain(join(sb.dir, 'elsewhere.db'));
  }, 60_000);

  test('status [--json] without a daemon: what the store holds, exit 1', () => {
    const env = { WCP__METRICS__LISTEN: `127.0.0.1:${metricsPort}` };
    const text = runWcp(sb, ['status'], { ...env, WCP__STORE__PATH: 'none.db' });
    expect(text.code).toBe(1);
    expect(text.stdout).toContain(`no daemon answered on 127.0.0.1:${metricsPort}`);
    const json = runWcp(sb, ['status', '--json'], env); // the store the db scan test left
    expect(json.code).toBe(1);
    const body = JSON.parse(json.stdout) as { source: string; store: unknown };
    expect(body.source).toContain(`store ${sb.dbPath}`);
    expect(body.store).toBeDefined();
  }, 60_000);
});

describe('wcp CLI: keys', () => {
  const pw = () => put('pw', 'correct horse battery staple\n');

  test('key new --out FILE --password-file FILE writes a 0600 keystore and prints its address; it loads', () => {
    const r = runWcp(sb, ['key', 'new', '--out', 'new.json', '--password-file', pw()]);
    expect(r.code, r.stderr).toBe(0);
    const address = r.stdout.trim();
    expect(address).toMatch(/^0x[0-9a-fA-F]{40}$/);
    expect(statSync(join(sb.dir, 'new.json')).mode & 0o777).toBe(0o600);
    const cfg = resolved({
      WCP__ETHEREUM__WALLET_PRIVATE_KEY: '',
      WCP__ETHEREUM__WALLET_ADDRESS: '',
      WCP__ETHEREUM__WALLET_KEYSTORE: 'new.json',
      WCP__ETHEREUM__WALLET_PASSWORD_FILE: 'pw',
    });
    expect(cfg.ethereum?.walletAddress).toBe(address as never);
    // Never over an existing file.
    const again = runWcp(sb, ['key', 'new', '--out', 'new.json', '--password-file', 'pw']);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('wcp never overwrites a keystore');
  }, 60_000);

  test('key new prints the absolute paths it was given; a password file is read up to its first line break', () => {
    mkdirSync(join(sb.dir, 'keys'), { recursive: true });
    put('keys/pw2', 'correct horse battery staple\nnot part of the password\n');
    const r = runWcp(sb, ['key', 'new', '--out', 'keys/abs.json', '--password-file', 'keys/pw2']);
    expect(r.code, r.stderr).toBe(0);
    const here = realpathSync(sb.dir);
    expect(r.stderr).toContain(`ethereum.wallet_keystore = "${join(here, 'keys', 'abs.json')}"`);
    expect(r.stderr).toContain(`ethereum.wallet_password_file = "${join(here, 'keys', 'pw2')}"`);
    // The password is the first line alone: a file holding just that line opens the keystore.
    put('keys/pw1', 'correct horse battery staple');
    const cfg = resolved({
      WCP__ETHEREUM__WALLET_PRIVATE_KEY: '',
      WCP__ETHEREUM__WALLET_ADDRESS: '',
      WCP__ETHEREUM__WALLET_KEYSTORE: 'keys/abs.json',
      WCP__ETHEREUM__WALLET_PASSWORD_FILE: 'keys/pw1',
    });
    expect(cfg.ethereum?.walletAddress).toBe(r.stdout.trim() as never);
  }, 90_000);

  test('key import reads the hex key from stdin or --key-file; a wrong password then exits 3', () => {
    pw();
    const stdin = runWithInput(['key', 'import', '--out', 'in.json', '--password-file', 'pw'], `${DEV_KEY}\n`);
    expect(stdin.code, stdin.stderr).toBe(0);
    expect(stdin.stdout.trim()).toBe(DEV_ADDRESS);
    const keyFile = put('raw.key', DEV_KEY.slice(2));
    const fromFile = runWcp(sb, ['key', 'import', '--out', 'in2.json', '--password-file', 'pw', '--key-file', keyFile]);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(fromFile.stdout.trim()).toBe(DEV_ADDRESS);
    put('wrong-pw', 'not the password\n');
    const wrong = runWcp(sb, ['config', 'check'], {
      WCP__ETHEREUM__WALLET_PRIVATE_KEY: '',
      WCP__ETHEREUM__WALLET_KEYSTORE: 'in.json',
      WCP__ETHEREUM__WALLET_PASSWORD_FILE: 'wrong-pw',
    });
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toContain('in.json');
    expect(wrong.stderr + wrong.stdout).not.toContain('not the password');
  }, 90_000);

  test('a key file readable by others exits 3 naming the file and chmod 600', () => {
    const loose = put('loose.key', DEV_KEY, 0o644);
    const env = { WCP__ETHEREUM__WALLET_PRIVATE_KEY: '', WCP__ETHEREUM__WALLET_KEY_FILE: loose };
    const r = runWcp(sb, ['run'], env);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`chmod 600 ${loose}`);
    const allowed = runWcp(sb, ['config', 'check'], { ...env, WCP__ETHEREUM__ALLOW_INSECURE_KEY_FILES: 'true' });
    expect(allowed.code, allowed.stderr).toBe(0);
  }, 60_000);
});

describe('wcp CLI: environment', () => {
  test('ENVIRONMENT picks configs/{ENVIRONMENT}.toml in ./configs or WCP_CONFIG_DIR, else the embedded local', () => {
    expect(resolved({}).source).toBe('embedded:local' as never);
    expect(resolved({ ENVIRONMENT: 'local' }).source).toBe('embedded:local' as never);
    const missing = runWcp(sb, ['config', 'check'], { ENVIRONMENT: 'testnet' });
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('no config for ENVIRONMENT=testnet');
    mkdirSync(join(sb.dir, 'configs'), { recursive: true });
    mkdirSync(join(sb.dir, 'elsewhere'), { recursive: true });
    const body = `[ethereum]\nwallet_private_key = "${DEV_KEY}"\n[scheduler]\nqueue_name = `;
    put('configs/testnet.toml', `${body}"from-configs"\n`);
    put('elsewhere/testnet.toml', `${body}"from-dir"\n`);
    expect(resolved({ ENVIRONMENT: 'testnet' }).scheduler?.queueName).toBe('from-configs' as never);
    const dir = resolved({ ENVIRONMENT: 'testnet', WCP_CONFIG_DIR: 'elsewhere' });
    expect(dir.scheduler?.queueName).toBe('from-dir' as never);
    // WCP_CONFIG names a file directly and wins over ENVIRONMENT; --config wins over WCP_CONFIG.
    const direct = resolved({ ENVIRONMENT: 'testnet', WCP_CONFIG: 'elsewhere/testnet.toml' });
    expect(direct.source).toBe(join(sb.dir, 'elsewhere/testnet.toml') as never);
    const flag = resolved({ WCP_CONFIG: 'nope.toml' }, ['--config', 'configs/testnet.toml']);
    expect(flag.scheduler?.queueName).toBe('from-configs' as never);
  }, 60_000);

  test('WCP__SECTION__KEY overrides a key; a misspelt WCP_ variable or file key exits 3 with the closest name', () => {
    expect(resolved({ WCP__SCHEDULER__POLL_INTERVAL: '2s' }).scheduler?.pollIntervalMs).toBe(2000);
    const typo = runWcp(sb, ['run'], { WCP_SCHEDULER__POLL_INTERVAL: '2s' });
    expect(typo.code).toBe(3);
    expect(typo.stderr).toContain(
      'WCP_SCHEDULER__POLL_INTERVAL: unknown variable; did you mean WCP__SCHEDULER__POLL_INTERVAL?',
    );
    const file = put(
      'typo.toml',
      `[ethereum]\nwallet_private_key = "${DEV_KEY}"\n[scheduler]\npoll_intervall = "2s"\n`,
    );
    const key = runWcp(sb, ['config', 'check', '--config', file]);
    expect(key.code).toBe(3);
    expect(key.stderr).toContain('poll_interval');
  }, 60_000);

  test('WCP_LOG_LEVEL / WCP_LOG_FORMAT are short forms of WCP__LOG__LEVEL / WCP__LOG__FORMAT', () => {
    expect(resolved({ WCP_LOG_LEVEL: 'debug', WCP_LOG_FORMAT: 'json' }).log).toEqual({
      level: 'debug',
      format: 'json',
    });
    const both = resolved({ WCP_LOG_LEVEL: 'debug', WCP__LOG__LEVEL: 'warn', WCP__LOG__FORMAT: 'pretty' });
    expect(both.log).toEqual({ level: 'warn', format: 'pretty' });
  }, 60_000);

  /** `wcp run` against a closed RPC port (it retries the chain at start) until `re` is in its output. */
  async function runUntil(env: Record<string, string>, re: RegExp): Promise<WcpProcess> {
    const w = startWcp(sb, ['run'], {
      WCP__ETHEREUM__RPC_URL: 'http://127.0.0.1:1',
      WCP__METRICS__ENABLED: 'false',
      WCP__STORE__PATH: 'logs.db',
      ...env,
    });
    procs.push(w);
    await w.waitFor(re);
    return w;
  }

  test('WCP_LOG_FORMAT=json gives JSON lines, pretty does not; WCP_LOG_LEVEL=debug adds debug, warn drops info', async () => {
    const json = await runUntil({ WCP_LOG_FORMAT: 'json', WCP_LOG_LEVEL: 'debug' }, /^\{"ts":"[^"]+","level":"debug"/m);
    json.proc.kill('SIGKILL');
    await json.exited;
    expect(linesWith(json, 'wcp starting').length).toBe(1);
    expect(logLines(json).some((l) => l.level === 'debug')).toBe(true);
    const pretty = await runUntil({ WCP_LOG_FORMAT: 'pretty' }, /chain not reachable yet/);
    pretty.proc.kill('SIGKILL');
    await pretty.exited;
    expect(pretty.output()).toMatch(/INFO +\[wcp\] wcp starting/);
    expect(logLines(pretty)).toEqual([]);
    expect(pretty.output()).not.toMatch(/DEBUG/);
    const warn = await runUntil({ WCP_LOG_FORMAT: 'json', WCP_LOG_LEVEL: 'warn' }, /chain not reachable yet/);
    warn.proc.kill('SIGKILL');
    await warn.exited;
    expect(logLines(warn).length).toBeGreaterThan(0);
    expect(logLines(warn).every((l) => l.level === 'warn' || l.level === 'error')).toBe(true);
  }, 60_000);

  test('exit 5: stopped while the chain has never answered (run waits for it at start)', async () => {
    const w = await runUntil({ WCP_LOG_FORMAT: 'json' }, /chain not reachable yet/);
    w.proc.kill('SIGTERM');
    expect(await w.exited).toBe(5);
    expect(w.output()).toContain('no RPC endpoint answered [CHAIN_UNREACHABLE]');
  }, 30_000);

  test('exit 4: a store file that is not an LMDB store, naming the fix', () => {
    put('garbage.db', 'not an lmdb file, not at all\n'.repeat(200));
    const r = runWcp(sb, ['run'], { WCP__STORE__PATH: 'garbage.db', WCP__METRICS__ENABLED: 'false' });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('is not an LMDB store');
    expect(r.stderr).toContain('move the file aside');
  }, 60_000);

  test('exit 3: a non-loopback executor or a heartbeat the receipt poll cannot keep up with', () => {
    const remote = runWcp(sb, ['config', 'check'], { WCP__EXECUTOR__ENDPOINT: '10.1.2.3:7070' });
    expect(remote.code).toBe(3);
    expect(remote.stderr).toContain('executor.endpoint');
    const slow = runWcp(sb, ['config', 'check'], {
      WCP__TX_POLICY__RECEIPT_POLL: '5s',
      WCP__SCHEDULER__HEARTBEAT_INTERVAL: '6s',
    });
    expect(slow.code).toBe(3);
    expect(slow.stderr).toContain('scheduler.heartbeat_interval');
  }, 60_000);
});

// On a chain: the exit codes that need one answering.
describe('wcp CLI: on anvil', () => {
  let anvil: Anvil;
  let stack: Stack;
  beforeAll(async () => {
    anvil = await startAnvil();
    stack = await deployStack({ rpcUrl: anvil.url, deployerKey: anvil.accounts[0]!.privateKey });
    await registerWorker(stack, anvil.accounts[1]!.address, 8);
  }, 120_000);
  afterAll(async () => {
    stack?.destroy();
    await anvil?.stop();
  }, 60_000);
  const me = () => ({ rpcUrl: anvil.url, privateKey: anvil.accounts[1]!.privateKey });

  test('exit 6: the chain id differs from ethereum.chain_id', () => {
    const r = runWcp(
      sb,
      ['run'],
      wcpEnv(me(), OBSERVE_SETTINGS, { WCP__ETHEREUM__CHAIN_ID: '1', WCP__STORE__PATH: 'c6.db' }),
    );
    expect(r.code).toBe(6);
    expect(r.stderr).toContain('no RPC endpoint serves chain id 1 (ethereum.chain_id)');
  }, 30_000);

  test('exit 3 at start: a configuration that cannot keep activities alive on this chain, with the arithmetic', () => {
    // The TaskQueue's 60 s timeout allows 30 s between heartbeats; 20 s (timeout/3) + a 15 s receipt poll do not fit.
    const r = runWcp(
      sb,
      ['run'],
      wcpEnv(me(), {
        WCP__SCHEDULER__HEARTBEAT_INTERVAL: '40s',
        WCP__TX_POLICY__RECEIPT_POLL: '15s',
        WCP__STORE__PATH: 'c3.db',
      }),
    );
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain('this configuration cannot keep activities alive on this chain');
    expect(r.stderr).toContain("half the contract's heartbeat timeout 60 s = 30 s");
  }, 30_000);

  test('status [--json] with a daemon running asks its /status, exit 0', async () => {
    const port = await freePort();
    const env = wcpEnv(me(), OBSERVE_SETTINGS, {
      WCP__METRICS__ENABLED: 'true',
      WCP__METRICS__LISTEN: `127.0.0.1:${port}`,
      WCP__STORE__PATH: 'status.db',
    });
    const w = startWcp(sb, ['run'], env);
    procs.push(w);
    await w.waitFor(/poller started/);
    const r = runWcp(sb, ['status', '--json'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const body = JSON.parse(r.stdout) as { source: string; state: string };
    expect(body.source).toBe(`daemon at 127.0.0.1:${port}`);
    expect(body.state).toBe('running');
    const text = runWcp(sb, ['status'], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('state running · '); // the page's summary as text
    expect(text.stdout).toContain('\nNonce lane\n  not running (observe mode or starting)');
    w.proc.kill('SIGTERM');
    expect(await w.exited).toBe(0);
  }, 60_000);

  test('exit 130: a second signal while draining a running task forces the exit', async () => {
    await enqueueActivities(stack, { queue: 'sig', count: 1 });
    const env = wcpEnv(me(), LIFECYCLE_SETTINGS, {
      WCP__SCHEDULER__QUEUE_NAME: 'sig',
      WCP__EXECUTOR__NOOP_DELAY: '60s',
      WCP__SHUTDOWN__DRAIN_TIMEOUT: '45s',
      WCP__STORE__PATH: 'sig.db',
    });
    const w = startWcp(sb, ['run'], env);
    procs.push(w);
    await w.waitFor(/activity assigned to executor/, 60_000);
    w.proc.kill('SIGTERM');
    await w.waitFor(/signal received: draining/);
    w.proc.kill('SIGTERM');
    expect(await w.exited).toBe(130);
    expect(linesWith(w, 'second signal: forcing exit').length).toBe(1);
    // LMDB commits are atomic: the store opens and still holds the activity that did not finish.
    const held = runWcp(sb, ['db', 'scan', 'inflight:', '--json', '--db', join(sb.dir, 'sig.db')]);
    expect(held.code, held.stderr).toBe(0);
    expect(held.stdout.trim().split('\n').length).toBe(1);
  }, 90_000);
});
