/**
 * Configurations that would start and then idle without a word are refused at load, naming the field: a lane too
 * small to ever claim, a port outside 1..65535 anywhere, and the embedded development config pointed at a chain
 * that is not on this host.
 */
import { describe, expect, test } from 'bun:test';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from './load.ts';
import { configFiles, refusalText } from './testing/files.ts';

const KEY = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d';
const files = configFiles('wcp-config-idle-');
const dir = files.dir;
const fileWith = (text: string) => files.file(text);
const failure = (fn: () => unknown) => refusalText(fn, 'CONFIG_INVALID');

const env = (extra: Record<string, string> = {}) => ({ WCP__ETHEREUM__WALLET_PRIVATE_KEY: KEY, ...extra });

describe('no silent idling: refused at load', () => {
  test('tx_policy.max_in_flight below 3 never claims (2 slots are kept for heartbeats): refused with the arithmetic', () => {
    const path = fileWith('');
    for (const n of [1, 2]) {
      const text = failure(() => loadConfig({ path, env: env({ WCP__TX_POLICY__MAX_IN_FLIGHT: String(n) }) }));
      expect(text).toContain(`tx_policy.max_in_flight: got ${n}, expected at least 3`);
      expect(text).toContain(`max_in_flight − 2 (the slots kept for heartbeats and finishing transactions) = ${n - 2}`);
    }
    expect(loadConfig({ path, env: env({ WCP__TX_POLICY__MAX_IN_FLIGHT: '3' }) }).txPolicy.maxInFlight).toBe(3);
    // An observing worker sends nothing: its lane size does not matter.
    const observe = env({ WCP__TX_POLICY__MAX_IN_FLIGHT: '1', WCP__SCHEDULER__MODE: 'observe' });
    expect(loadConfig({ path, env: observe }).txPolicy.maxInFlight).toBe(1);
  });

  test('a port of 0 or above 65535 is refused in every host:port and URL field, naming the field', () => {
    const path = fileWith('');
    const cases: Array<[string, string, string]> = [
      ['WCP__METRICS__LISTEN', '127.0.0.1:0', 'metrics.listen'],
      ['WCP__METRICS__LISTEN', '127.0.0.1:70000', 'metrics.listen'],
      ['WCP__EXECUTOR__ENDPOINT', '127.0.0.1:99999', 'executor.endpoint'],
      ['WCP__SUBNET_API__GRPC_ENDPOINT', 'localhost:0', 'subnet_api.grpc_endpoint'],
      ['WCP__ETHEREUM__RPC_URL', 'http://127.0.0.1:65536', 'ethereum.rpc_url'],
      ['WCP__ETHEREUM__RPC_URLS', 'http://127.0.0.1:8545,http://127.0.0.1:0', 'ethereum.rpc_urls.1'],
      ['WCP__ETHEREUM__WS_URL', 'ws://127.0.0.1:123456', 'ethereum.ws_url'],
    ];
    for (const [name, value, field] of cases) {
      const text = failure(() => loadConfig({ path, env: env({ [name]: value }) }));
      expect(text).toContain(`${field}: got`);
      expect(text).toMatch(/port from 1 to 65535/);
    }
    expect(loadConfig({ path, env: env({ WCP__METRICS__LISTEN: '127.0.0.1:65535' }) }).metrics.listen).toBe(
      '127.0.0.1:65535',
    );
  });

  test('the embedded dev config (public anvil key) against a chain not on this host is refused; on loopback it runs', () => {
    const cwd = mkdtempSync(join(dir, 'empty-')); // no configs/ here: the embedded local config is used
    for (const [name, url] of [
      ['WCP__ETHEREUM__RPC_URL', 'https://mainnet.example.org/v3/TOKEN'],
      ['WCP__ETHEREUM__RPC_URLS', 'http://10.0.0.5:8545'],
      ['WCP__ETHEREUM__WS_URL', 'wss://rpc.example.org'],
    ] as const) {
      const text = failure(() => loadConfig({ cwd, env: { [name]: url } }));
      expect(text).toContain('the embedded development config (embedded:local)');
      expect(text).toContain('pass --config FILE');
      expect(text).not.toContain('TOKEN');
    }
    const local = loadConfig({ cwd, env: { WCP__ETHEREUM__RPC_URL: 'http://localhost:8545' } });
    expect(local.source).toBe('embedded:local');
    // The same remote URL in a config file of its own is the operator's choice.
    const file = fileWith('[ethereum]\nrpc_url = "https://mainnet.example.org"\n');
    expect(loadConfig({ path: file, env: env() }).ethereum.rpcUrls[0]).toBe('https://mainnet.example.org');
  });
});
