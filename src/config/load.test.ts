import { describe, expect, test } from 'bun:test';
import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encryptKeystoreJsonSync, Wallet } from 'ethers';
import { parse as parseToml } from 'smol-toml';
import { redact } from '../internal/redact.ts';
import { loadConfig, loadConfigWithFile, redactedConfig } from './load.ts';
import { renderConfigToml } from './render.ts';
import { configFiles, refusalText } from './testing/files.ts';

const KEY = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d';
const PASTED = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90';
const RPC = 'http://user:pass@127.0.0.1:8545/v3/SECRETPATH?apikey=SECRET2XYZ';
const files = configFiles('wcp-config-');
const dir = files.dir;
const fileWith = (text: string) => files.file(text);
const failure = (fn: () => unknown) => refusalText(fn);

describe('config loading', () => {
  test('a receipt poll too slow for the heartbeat interval is refused with the arithmetic', () => {
    const path = fileWith('[scheduler]\nheartbeat_interval = "1s"\n[tx_policy]\nreceipt_poll = "600ms"\n');
    const text = failure(() => loadConfig({ path, env: { WCP__ETHEREUM__WALLET_PRIVATE_KEY: KEY } }));
    expect(text).toContain('tx_policy.receipt_poll 600 ms × 2 > scheduler.heartbeat_interval 1000 ms');
    const ok = fileWith('[scheduler]\nheartbeat_interval = "1s"\n[tx_policy]\nreceipt_poll = "500ms"\n');
    expect(loadConfig({ path: ok, env: { WCP__ETHEREUM__WALLET_PRIVATE_KEY: KEY } }).txPolicy.receiptPollMs).toBe(500);
  });

  test('a done retention shorter than the reconciler window is refused; the env sets it', () => {
    const path = fileWith('[store]\ndone_retention = "2h"\n[reconciler]\nwindow = "3h"\n');
    const text = failure(() => loadConfig({ path, env: { WCP__ETHEREUM__WALLET_PRIVATE_KEY: KEY } }));
    expect(text).toContain('store.done_retention 7200000 ms < reconciler.window 10800000 ms');
    const env = { WCP__ETHEREUM__WALLET_PRIVATE_KEY: KEY, WCP__STORE__DONE_RETENTION: '3h' };
    expect(loadConfig({ path, env }).store.doneRetentionMs).toBe(3 * 3_600_000);
    // Values that do not fit together are all reported at once.
    const both = fileWith(
      '[store]\ndone_retention = "2h"\n[scheduler]\nheartbeat_interval = "1s"\n[tx_policy]\nreceipt_poll = "600ms"\n',
    );
    const all = failure(() => loadConfig({ path: both, env: { WCP__ETHEREUM__WALLET_PRIVATE_KEY: KEY } }));
    expect(all).toContain('store.done_retention 7200000 ms');
    expect(all).toContain('tx_policy.receipt_poll 600 ms × 2');
  });

  test('a TOML syntax error names its line and column', () => {
    const path = fileWith('[scheduler]\npoll_interval = "1s"\nmax_inflight = \n');
    expect(failure(() => loadConfig({ path, env: {} }))).toContain('line 3, column');
  });

  test('a misspelt WCP_ variable is refused with the closest valid name', () => {
    const text = failure(() =>
      loadConfig({ env: { WCP__ETHEREUM__WALLET_PRIVATE_KEY: KEY, WCP_SCHEDULER__POLL_INTERVAL: '2s' } }),
    );
    expect(text).toContain(
      'WCP_SCHEDULER__POLL_INTERVAL: unknown variable; did you mean WCP__SCHEDULER__POLL_INTERVAL?',
    );
    const text2 = failure(() =>
      loadConfig({ env: { WCP__ETHEREUM__WALLET_PRIVATE_KEY: KEY, WCP__SCHEDULER__POLL_INTERVL: '2s' } }),
    );
    expect(text2).toContain('did you mean WCP__SCHEDULER__POLL_INTERVAL?');
  });

  test('an unknown file key suggests the right one', () => {
    const path = fileWith('[scheduler]\npoll_intervl = "1s"\n');
    expect(failure(() => loadConfig({ path, env: { WCP__ETHEREUM__WALLET_PRIVATE_KEY: KEY } }))).toContain(
      'scheduler.poll_intervl: unknown key; did you mean scheduler.poll_interval?',
    );
  });

  test('WCP_LOG_LEVEL and WCP_LOG_FORMAT override the file; WCP__LOG__LEVEL wins over the short form', () => {
    const c = loadConfig({
      env: { WCP__ETHEREUM__WALLET_PRIVATE_KEY: KEY, WCP_LOG_LEVEL: 'debug', WCP_LOG_FORMAT: 'json' },
    });
    expect(c.log.level).toBe('debug');
    expect(c.log.format).toBe('json');
    const c2 = loadConfig({
      env: { WCP__ETHEREUM__WALLET_PRIVATE_KEY: KEY, WCP_LOG_LEVEL: 'debug', WCP__LOG__LEVEL: 'warn' },
    });
    expect(c2.log.level).toBe('warn');
  });

  test('a private key pasted into the wrong field never appears in the error, in any case or without 0x', () => {
    for (const env of [
      { WCP__ETHEREUM__WALLET_ADDRESS: PASTED },
      { WCP__ETHEREUM__WALLET_ADDRESS: `0x${PASTED.toUpperCase()}` },
      { WCP__ETHEREUM__RPC_URLS: `http://127.0.0.1:1/${PASTED}` },
      { WCP__ETHEREUM__WALLET_KEY_FILE: `/nonexistent/${PASTED}` },
    ]) {
      const text = failure(() =>
        loadConfig({ env: { ...env, WCP__ETHEREUM__WALLET_PRIVATE_KEY: KEY, WCP__ETHEREUM__RPC_URL: 'nope' } }),
      );
      expect(text.toLowerCase()).not.toContain(PASTED);
      expect(text).toContain('ethereum.rpc_url');
    }
  });

  test('RPC URL credentials, path and query never appear in a validation error, the resolved config or the TOML', () => {
    const bad = failure(() =>
      loadConfig({
        env: { WCP__ETHEREUM__WALLET_PRIVATE_KEY: KEY, WCP__ETHEREUM__RPC_URLS: RPC.replace('http', 'ftp') },
      }),
    );
    const { config, file } = loadConfigWithFile({
      env: { WCP__ETHEREUM__WALLET_PRIVATE_KEY: KEY, WCP__ETHEREUM__RPC_URL: RPC },
    });
    const outputs = [
      bad,
      JSON.stringify(redactedConfig(config)),
      renderConfigToml(file, config.source),
      redact(`failed to reach ${RPC}: ECONNREFUSED`),
    ];
    for (const out of outputs) {
      for (const secret of ['user:pass', 'SECRETPATH', 'SECRET2XYZ', KEY.slice(2)]) expect(out).not.toContain(secret);
    }
    expect(outputs[1]).toContain('http://127.0.0.1:8545/…');
  });

  test('ws_url: a non-ws URL is refused naming the key; its credentials never appear in the resolved config', () => {
    const bad = failure(() =>
      loadConfig({ env: { WCP__ETHEREUM__WALLET_PRIVATE_KEY: KEY, WCP__ETHEREUM__WS_URL: 'http://127.0.0.1:8545' } }),
    );
    expect(bad).toContain('ethereum.ws_url');
    expect(bad).toContain('ws(s) URL');
    const WS = 'wss://127.0.0.1:8546/v3/WSSECRETPATH?apikey=WSSECRET2XYZ';
    const { config, file } = loadConfigWithFile({
      env: { WCP__ETHEREUM__WALLET_PRIVATE_KEY: KEY, WCP__ETHEREUM__WS_URL: WS },
    });
    expect(config.ethereum.wsUrl).toBe(WS);
    const outputs = [
      JSON.stringify(redactedConfig(config)),
      renderConfigToml(file, config.source),
      redact(`lost ${WS.replace('wss://', '')}: reset`),
    ];
    for (const out of outputs) for (const secret of ['WSSECRETPATH', 'WSSECRET2XYZ']) expect(out).not.toContain(secret);
    expect(loadConfig({ env: { WCP__ETHEREUM__WALLET_PRIVATE_KEY: KEY } }).ethereum.wsUrl).toBe('');
  });

  test('config check TOML pastes back: the same values load again', () => {
    const env = {
      WCP__ETHEREUM__WALLET_PRIVATE_KEY: KEY,
      WCP__SCHEDULER__POLL_INTERVAL: '1500ms',
      WCP__TX_POLICY__BUMP_AFTER: '2m',
    };
    const { config, file } = loadConfigWithFile({ env });
    const toml = renderConfigToml(file, config.source);
    expect(parseToml(toml)).toBeTruthy();
    const again = loadConfig({ path: fileWith(toml), env: { WCP__ETHEREUM__WALLET_PRIVATE_KEY: KEY } });
    const { source: _a, ...rest1 } = redactedConfig(config);
    const { source: _b, ...rest2 } = redactedConfig(again);
    expect(rest2).toEqual(rest1);
    expect(toml).toContain('bump_after = "2m"');
  });
});

describe('exposure', () => {
  const base = { WCP__ETHEREUM__WALLET_PRIVATE_KEY: KEY };
  test('a non-loopback executor endpoint or metrics listener is refused unless explicitly allowed', () => {
    const e = failure(() =>
      loadConfig({ env: { ...base, WCP__EXECUTOR__ENDPOINT: '10.0.0.5:7070', WCP__METRICS__LISTEN: '0.0.0.0:9464' } }),
    );
    expect(e).toContain('executor.endpoint: got "10.0.0.5:7070", expected a loopback address');
    expect(e).toContain('metrics.listen: got "0.0.0.0:9464", expected a loopback address');
    const ok = loadConfig({
      env: {
        ...base,
        WCP__EXECUTOR__ENDPOINT: '10.0.0.5:7070',
        WCP__EXECUTOR__ALLOW_INSECURE_REMOTE: 'true',
        WCP__METRICS__LISTEN: '0.0.0.0:9464',
        WCP__METRICS__ALLOW_NON_LOOPBACK: 'true',
      },
    });
    expect(ok.executor.endpoint).toBe('10.0.0.5:7070');
    expect(
      loadConfig({ env: { ...base, WCP__EXECUTOR__ENDPOINT: 'localhost:7070', WCP__METRICS__LISTEN: '[::1]:9464' } })
        .metrics.listen,
    ).toBe('[::1]:9464');
  });
});

describe('exposure: a remote executor over mTLS', () => {
  const base = { WCP__ETHEREUM__WALLET_PRIVATE_KEY: KEY };
  const mtls = {
    WCP__EXECUTOR__TLS_CA_FILE: 'tls/executor-ca.pem',
    WCP__EXECUTOR__TLS_CERT_FILE: '/etc/wcp/client.pem',
    WCP__EXECUTOR__TLS_KEY_FILE: '/etc/wcp/client.key',
  };
  test('a non-loopback endpoint is accepted with CA, client certificate and key; refused with less', () => {
    const ok = loadConfig({ env: { ...base, ...mtls, WCP__EXECUTOR__ENDPOINT: 'executor.internal:7070' }, cwd: dir });
    expect(ok.executor).toMatchObject({
      endpoint: 'executor.internal:7070',
      tlsCaFile: join(dir, 'tls/executor-ca.pem'),
      tlsCertFile: '/etc/wcp/client.pem',
      tlsKeyFile: '/etc/wcp/client.key',
      tlsServerName: '',
      allowInsecureRemote: false,
    });
    for (const missing of Object.keys(mtls)) {
      const e = failure(() =>
        loadConfig({ env: { ...base, ...mtls, [missing]: '', WCP__EXECUTOR__ENDPOINT: 'executor.internal:7070' } }),
      );
      expect(e).toContain('executor.endpoint: got "executor.internal:7070", expected a loopback address');
      // The message names the fix.
      expect(e).toContain('executor.tls_ca_file, executor.tls_cert_file and executor.tls_key_file for mTLS');
    }
  });

  test('TLS to an IP address needs tls_server_name (certificates are checked against host names)', () => {
    const ip = { ...base, ...mtls, WCP__EXECUTOR__ENDPOINT: '10.0.0.5:7070' };
    expect(failure(() => loadConfig({ env: ip }))).toContain(
      "executor.tls_server_name: got nothing, expected the host name the executor's certificate carries",
    );
    expect(failure(() => loadConfig({ env: { ...base, WCP__EXECUTOR__TLS_CA_FILE: 'ca.pem' } }))).toContain(
      'executor.tls_server_name',
    );
    const named = loadConfig({ env: { ...ip, WCP__EXECUTOR__TLS_SERVER_NAME: 'executor.internal' } });
    expect(named.executor.tlsServerName).toBe('executor.internal');
  });
});

describe('configs/example.toml', () => {
  test('is valid: it loads once its files exist (keystore and password made here)', () => {
    const text = readFileSync(join(import.meta.dir, '..', '..', 'configs', 'example.toml'), 'utf8');
    const ks = fileWith(
      encryptKeystoreJsonSync({ address: new Wallet(KEY).address, privateKey: KEY }, 'example password', {
        scrypt: { N: 1 << 10 },
      }),
    );
    const pw = fileWith('example password\n');
    chmodSync(ks, 0o600);
    chmodSync(pw, 0o600);
    const c = loadConfig({
      path: fileWith(
        text
          .replace('wallet_keystore = "/etc/wcp/keystore.json"', `wallet_keystore = "${ks}"`)
          .replace('wallet_password_file = "/etc/wcp/password"', `wallet_password_file = "${pw}"`),
      ),
      env: {},
    });
    expect(c.ethereum.walletAddress).toBe(new Wallet(KEY).address);
    expect(c.ethereum.confirmations).toBe(5);
  });
});
