/**
 * Starts a real anvil node (npm `@foundry-rs/anvil-linux-amd64`) on a free loopback port, for `npm run dev`,
 * tests and benchmarks. The real binary is spawned directly (`.bin/anvil` is only a Node wrapper).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { HDNodeWallet, Mnemonic } from 'ethers';

export const ANVIL_MNEMONIC = 'test test test test test test test test test test test junk';

export interface DevAccount {
  address: string;
  privateKey: string;
}

export interface AnvilOptions {
  /** Seconds between blocks (fractions allowed); omit for automine. */
  blockTime?: number;
  /** Start with mining off entirely (mine with `evm_mine`/`anvil_mine`). */
  noMining?: boolean;
  chainId?: number;
  /** Number of funded dev accounts (default 10). */
  accounts?: number;
  /** Port to use; default: a free one. */
  port?: number;
  /** Extra CLI args. */
  args?: string[];
  /** Pipe anvil's output to this process's stderr. */
  verbose?: boolean;
}

export interface Anvil {
  url: string;
  port: number;
  chainId: number;
  accounts: DevAccount[];
  process: ChildProcess;
  /** Raw JSON-RPC call; throws on an RPC error. */
  rpc<T = unknown>(method: string, params?: unknown[]): Promise<T>;
  /** Current block number, read with `eth_blockNumber` (no provider cache). */
  blockNumber(): Promise<number>;
  mine(blocks?: number): Promise<void>;
  stop(): Promise<void>;
}

export function anvilBinary(): string {
  const require = createRequire(import.meta.url);
  const pkg = require.resolve('@foundry-rs/anvil-linux-amd64/package.json');
  const bin = join(dirname(pkg), 'bin', 'anvil');
  if (!existsSync(bin)) throw new Error(`anvil binary not found at ${bin}; run npm install`);
  return bin;
}

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export function devAccounts(count: number): DevAccount[] {
  const mnemonic = Mnemonic.fromPhrase(ANVIL_MNEMONIC);
  const out: DevAccount[] = [];
  for (let i = 0; i < count; i++) {
    const w = HDNodeWallet.fromMnemonic(mnemonic, `m/44'/60'/0'/0/${i}`);
    out.push({ address: w.address, privateKey: w.privateKey });
  }
  return out;
}

export async function rpcCall<T>(url: string, method: string, params: unknown[] = []): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const body = (await res.json()) as { result?: T; error?: { code: number; message: string } };
  if (body.error) throw new Error(`${method}: ${body.error.message} (${body.error.code})`);
  return body.result as T;
}

export async function startAnvil(opts: AnvilOptions = {}): Promise<Anvil> {
  const port = opts.port ?? (await freePort());
  const chainId = opts.chainId ?? 31337;
  const accountCount = opts.accounts ?? 10;
  const args = [
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--chain-id',
    String(chainId),
    '--accounts',
    String(accountCount),
  ];
  if (opts.blockTime !== undefined) args.push('--block-time', String(opts.blockTime));
  if (opts.noMining) args.push('--no-mining');
  args.push(...(opts.args ?? []));
  const child = spawn(anvilBinary(), args, { stdio: ['ignore', opts.verbose ? 'inherit' : 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 8192) stderr = stderr.slice(-8192);
  });
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited) throw new Error(`anvil exited at start: ${stderr.trim()}`);
    try {
      await rpcCall(url, 'eth_chainId');
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`anvil did not answer on ${url} within 15 s: ${stderr.trim()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const anvil: Anvil = {
    url,
    port,
    chainId,
    accounts: devAccounts(accountCount),
    process: child,
    rpc: (method, params) => rpcCall(url, method, params ?? []),
    blockNumber: async () => Number(BigInt(await rpcCall<string>(url, 'eth_blockNumber'))),
    mine: async (blocks = 1) => {
      await rpcCall(url, 'anvil_mine', [`0x${blocks.toString(16)}`]);
    },
    stop: async () => {
      if (exited) return;
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => {
          if (!exited) child.kill('SIGKILL');
        }, 3000).unref();
      });
    },
  };
  return anvil;
}
