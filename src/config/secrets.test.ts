/**
 * Secrets at the config edge: refused URLs are never echoed, values that may be secrets pasted into the wrong field
 * never printed, short credentials refused or masked, and the files and links that would expose a secret refused
 * (a plaintext remote subnet-api, TLS client keys and config files holding a key readable by others).
 */
import { describe, expect, test } from 'bun:test';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { maskUrlText, redact, registeredSecrets, registerSecrets, registerUrlSecrets } from '../internal/redact.ts';
import { loadConfig, loadConfigWithFile, redactedConfig } from './load.ts';
import { renderConfigToml } from './render.ts';
import { configFiles, refusalText } from './testing/files.ts';

/** anvil's public account #1, the embedded local config's key (its wallet_address matches). */
const DEV_KEY = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d';
/** A key of no embedded config, for config files. */
const KEY = '0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba';
const files = configFiles('wcp-secrets-');
const dir = files.dir;
const put = (text: string, mode = 0o600) => files.file(text, { mode, ext: '' });
/** The refusal as `wcp` prints it (exit.ts passes it through the redactor). */
const failure = (fn: () => unknown) => refusalText(fn);
const base = { WCP__ETHEREUM__WALLET_PRIVATE_KEY: DEV_KEY };

/** Every printed form of a loaded config: the TOML and JSON of `config check`, the redacted resolved config. */
function printed(env: Record<string, string>, path?: string): string {
  const { config, file } = loadConfigWithFile({ env, ...(path ? { path } : {}), cwd: dir });
  return [renderConfigToml(file, config.source), JSON.stringify(redactedConfig(config))].join('\n');
}

describe('the redactor', () => {
  test('short URL credentials are masked as whole tokens; words of a path stay readable', () => {
    registerUrlSecrets('https://uSr4:pw7x@rpc.example:8545/v3/tk9z?apikey=k3y9&chain=mainnet&network=1');
    const echoed = redact(
      'HTTP 404 Cannot POST /v3/tk9z?apikey=k3y9 (auth uSr4:pw7x); invalid api key K3Y9 on mainnet, network 1',
    );
    for (const s of ['tk9z', 'k3y9', 'K3Y9', 'uSr4', 'pw7x']) expect(echoed).not.toContain(s);
    expect(echoed).toContain('/v3/');
    expect(echoed).toContain('mainnet');
    expect(echoed).toContain('network 1');
    // Inside a longer run of letters and digits a short secret is ordinary text, not the secret.
    expect(redact('stk9zz k3y90')).toBe('stk9zz k3y90');
  });

  test('a worker thread registers the list the supervisor hands it (the registry is per thread)', async () => {
    registerUrlSecrets('http://127.0.0.1:1/x?token=thr3adK');
    const code = `
      const { registerSecrets, redact } = await import(${JSON.stringify(join(import.meta.dir, '../internal/redact.ts'))});
      const { workerData, parentPort } = await import('node:worker_threads');
      const before = redact('Cannot POST /x?token=thr3adK');
      registerSecrets(workerData);
      parentPort.postMessage([before, redact('Cannot POST /x?token=thr3adK')]);`;
    const { Worker } = await import('node:worker_threads');
    const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), {
      workerData: registeredSecrets(),
    });
    const [before, after] = await new Promise<string[]>((resolve) => w.once('message', resolve));
    await w.terminate();
    expect(before).toContain('thr3adK'); // a fresh thread knows nothing
    expect(after).toBe('Cannot POST /x?token=[REDACTED]');
    registerSecrets(['x', 42]); // too short, not a string: ignored
    expect(redact('x marks 42')).toBe('x marks 42');
  });

  test('text meant as a URL keeps its scheme and host:port, never its user info, path or query', () => {
    expect(maskUrlText('user:pass@host:8545/v3/TOKEN?apikey=KEY')).toBe('[REDACTED]@host:8545/…');
    expect(maskUrlText('http//user:pass@host:8545/v3/TOKEN')).toBe('http//[REDACTED]@host:8545/…');
    expect(maskUrlText('http:/host:8545/v3/TOKEN?apikey=KEY')).toBe('http:/host:8545/…');
    expect(maskUrlText('host:8545')).toBe('host:8545');
  });
});

describe('URLs in the config', () => {
  const parts = ['opsuser', 's3cr3tpw', 'PATHTOKEN77', 'QUERYKEY88'];
  const bodies = [
    'opsuser:s3cr3tpw@rpc.example:8545/v3/PATHTOKEN77?apikey=QUERYKEY88',
    'http//opsuser:s3cr3tpw@rpc.example:8545/v3/PATHTOKEN77?apikey=QUERYKEY88',
    'http:/opsuser:s3cr3tpw@rpc.example:8545/v3/PATHTOKEN77?apikey=QUERYKEY88',
    'http:/rpc.example:8545/v3/PATHTOKEN77?apikey=QUERYKEY88',
  ];

  test('a malformed rpc_url, rpc_urls or ws_url is refused naming the field, its secret parts masked', () => {
    for (const bad of bodies) {
      for (const [env, field] of [
        [{ WCP__ETHEREUM__RPC_URL: bad }, 'ethereum.rpc_url'],
        [{ WCP__ETHEREUM__RPC_URLS: `http://127.0.0.1:8545,${bad}` }, 'ethereum.rpc_urls'],
        [{ WCP__ETHEREUM__WS_URL: bad.replace(/^http/, 'ws') }, 'ethereum.ws_url'],
      ] as const) {
        const text = failure(() => loadConfig({ env: { ...base, ...env } }));
        expect(text).toContain(field);
        expect(text).toContain('rpc.example:8545/…');
        for (const s of parts) expect(text).not.toContain(s);
      }
      const file = put(`[ethereum]\nrpc_urls = ["http://127.0.0.1:8545", ${JSON.stringify(bad)}]\n`);
      const text = failure(() => loadConfig({ path: file, env: base }));
      expect(text).toContain('ethereum.rpc_urls.1');
      for (const s of parts) expect(text).not.toContain(s);
    }
  });

  test('user info, a password or a key/token query value under 4 characters is refused, masked', () => {
    for (const url of ['http://ab:longpassword@h:8545', 'http://longuser:xy@h:8545', 'http://h:8545/?apikey=q1']) {
      const text = failure(() => loadConfig({ env: { ...base, WCP__ETHEREUM__RPC_URLS: url } }));
      expect(text).toContain('ethereum.rpc_urls.0');
      expect(text).toContain('a credential (user name, password, or key/token query value) of at least 4 characters');
      for (const s of ['longpassword', 'longuser', 'q1']) expect(text).not.toContain(s);
    }
    // A short query value that is not a credential (`chain=1`) is accepted, and stays readable.
    const ok = loadConfig({ env: { ...base, WCP__ETHEREUM__RPC_URL: 'http://127.0.0.1:8545/rpc?chain=1' } });
    expect(ok.ethereum.rpcUrls[0]).toBe('http://127.0.0.1:8545/rpc?chain=1');
  });
});

describe('secrets pasted into the wrong field', () => {
  const MNEMONIC = 'tumble velvet orchard minus ladder ripple canyon fossil wisdom hurdle ginger absorb';
  const PASSWORD = 'Tr0ub4dor&3-horse';
  const PASTED_KEY = 'c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee01';

  test('a password or mnemonic in a path field is never printed: not in the error, not in config check', () => {
    for (const [field, env] of [
      ['ethereum.wallet_key_file', 'WCP__ETHEREUM__WALLET_KEY_FILE'],
      ['ethereum.wallet_password_file', 'WCP__ETHEREUM__WALLET_PASSWORD_FILE'],
    ] as const) {
      for (const pasted of [PASSWORD, MNEMONIC]) {
        const extra: Record<string, string> =
          field === 'ethereum.wallet_password_file' ? { WCP__ETHEREUM__WALLET_KEYSTORE: put('{}') } : {};
        const text = failure(() =>
          loadConfig({ env: { ...extra, [env]: pasted, WCP__ETHEREUM__WALLET_PRIVATE_KEY: '' }, cwd: dir }),
        );
        expect(text).toContain(`${field}: no file at the configured path`);
        expect(text).not.toContain(pasted);
        for (const word of ['tumble', 'Tr0ub4dor']) expect(text).not.toContain(word);
      }
    }
    // Unused path fields (the key comes from the env) are never printed either.
    const out = printed({
      ...base,
      WCP__ETHEREUM__WALLET_KEY_FILE: PASSWORD,
      WCP__SUBNET_API__TLS_KEY_FILE: MNEMONIC,
    });
    expect(out).not.toContain('Tr0ub4dor');
    expect(out).not.toContain('tumble');
    expect(out).toContain('wallet_key_file = "[REDACTED]" # hidden');
  });

  test('a key or mnemonic in any field (queue_name) is masked in config check TOML and JSON', () => {
    for (const pasted of [PASTED_KEY, `0x${PASTED_KEY.toUpperCase()}`, MNEMONIC]) {
      const out = printed(base, put(`[scheduler]\nqueue_name = ${JSON.stringify(pasted)}\n`));
      expect(out.toLowerCase()).not.toContain(PASTED_KEY);
      expect(out).not.toContain('tumble');
      expect(out).toContain('queue_name = "[REDACTED]"');
    }
  });
});

describe('links and files that would expose a secret', () => {
  test('a remote subnet-api in plaintext is refused unless TLS or allow_insecure_remote (env override)', () => {
    const remote = { ...base, WCP__SUBNET_API__GRPC_ENDPOINT: 'storage.example:50051' };
    expect(failure(() => loadConfig({ env: remote }))).toContain(
      'subnet_api.grpc_endpoint: got "storage.example:50051", expected a loopback address (127.0.0.1:PORT) unless the link uses TLS',
    );
    const allowed = loadConfig({ env: { ...remote, WCP__SUBNET_API__ALLOW_INSECURE_REMOTE: 'true' } });
    expect(allowed.subnetApi.allowInsecureRemote).toBe(true);
    const tls = loadConfig({ env: { ...remote, WCP__SUBNET_API__TLS_CA_FILE: put('ca') } });
    expect(tls.subnetApi.grpcEndpoint).toBe('storage.example:50051');
    expect(loadConfig({ env: { ...base, WCP__SUBNET_API__GRPC_ENDPOINT: 'localhost:50051' } }).subnetApi).toBeTruthy();
  });

  test('a TLS client key readable by others is refused with the chmod fix, unless allow_insecure_key_files', () => {
    for (const section of ['executor', 'subnet_api']) {
      const key = put('-----BEGIN PRIVATE KEY-----', 0o644);
      const env = {
        ...base,
        [`WCP__${section.toUpperCase()}__TLS_CA_FILE`]: put('ca'),
        [`WCP__${section.toUpperCase()}__TLS_CERT_FILE`]: put('cert'),
        [`WCP__${section.toUpperCase()}__TLS_KEY_FILE`]: key,
        WCP__EXECUTOR__TLS_SERVER_NAME: 'localhost',
      };
      expect(failure(() => loadConfig({ env }))).toContain(
        `${section}.tls_key_file: ${key} can be read by group or others (mode 644); run \`chmod 600 ${key}\``,
      );
      expect(loadConfig({ env: { ...env, WCP__ETHEREUM__ALLOW_INSECURE_KEY_FILES: 'true' } })).toBeTruthy();
      chmodSync(key, 0o600);
      expect(loadConfig({ env })).toBeTruthy();
    }
  });

  test('a wallet_private_key in a config file readable by others is refused; 0600, the env or the public test key pass', () => {
    const body = `[ethereum]\nwallet_private_key = "${KEY}"\n`;
    const open = put(body, 0o644);
    const text = failure(() => loadConfig({ path: open, env: {} }));
    expect(text).toContain(`ethereum.wallet_private_key: the key is in ${open}, which can be read by group or others`);
    expect(text).toContain(`chmod 600 ${open}`);
    expect(text).not.toContain(KEY.slice(2));
    expect(loadConfig({ path: put(body, 0o600), env: {} }).ethereum.walletAddress).toBeTruthy();
    expect(loadConfig({ path: open, env: { WCP__ETHEREUM__ALLOW_INSECURE_KEY_FILES: 'true' } })).toBeTruthy();
    expect(
      loadConfig({
        path: put('[scheduler]\nqueue_name = "q"\n', 0o644),
        env: { ...base, WCP__ETHEREUM__WALLET_PRIVATE_KEY: KEY },
      }),
    ).toBeTruthy();
    expect(loadConfig({ path: put(`[ethereum]\nwallet_private_key = "${DEV_KEY}"\n`, 0o644), env: {} })).toBeTruthy();
  });
});
