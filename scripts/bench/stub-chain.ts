/**
 * A STUB chain for `dispatch_activities_per_s` (benchmark only): a JSON-RPC server that answers what dist/wcp asks
 * of a node, with the reference TaskQueue's rules for the calls the daemon makes, and no EVM. An endless queue of
 * pending standalone activities (`bench.task`, `json:{}`, workflowInstance 0 so no resume) is served by
 * `pollActivity`; claims, heartbeats, completions and failures change state and emit the contract's events; every
 * transaction is mined on arrival (its own block, in nonce order), and an empty block is added every 20 ms so
 * confirmations come. So the chain costs nothing and what is measured is the daemon and the executor.
 * Calls it does not know are answered with a JSON-RPC error and counted in `unknown`.
 *
 * Kept cheap per call, or the stub, not the daemon, is what the figure measures: signatures are not recovered (the
 * worker is the only sender: recovering each one cost ~20 % of this process), a receipt's logs and a log range are
 * found through indexes (a scan of every log so far per receipt made the stub slower as the run went on), and the
 * ABI decoding of repeated calldata is cached (stub-contracts.ts).
 *
 * EIP-7702 by the same rules as a chain that has it: a type-4 transaction's authorization (nonce = the sender's
 * nonce after the transaction's own) delegates the sender, using up one more nonce; a delegated worker's
 * transaction to itself runs the batch executor's `execute` (batch, try mode: a failing call emits
 * `ERC7579TryExecuteFail` from the wallet and costs only itself) and an `eth_call` of its `simulate` reports per
 * call. The executor's code is served at its pinned address (`eth_getCode`), so wcp's code-hash check passes.
 */
import { AbiCoder, id as keccakText, Transaction } from 'ethers';
import { BATCH_EXECUTOR, batchExecutorIface } from '../../src/chain/batch-executor.ts';
import { createStubContracts, type ExecResult, STUB_ADDRESSES } from './stub-contracts.ts';

export { STUB_ADDRESSES } from './stub-contracts.ts';

interface Log {
  address: string;
  topics: string[];
  data: string;
  block: number;
  tx: string;
}
interface Block {
  n: number;
  ts: number;
  hash: string;
  txs: string[];
}

/** A running stub chain. */
export interface StubChain {
  url: string;
  /** Completions (ActivityCompleted) so far, and when each was mined (ms, performance.now()). */
  completedAt: number[];
  unknown: Record<string, number>;
  /** Calls answered, per method. */
  counts: Record<string, number>;
  stop(): void;
}

const hex = (n: number | bigint) => `0x${n.toString(16)}`;
const lower = (a: string) => a.toLowerCase();

/**
 * Starts the stub on a free loopback port; `worker` is the only active worker. `executorCode`: the batch executor's
 * runtime code (`compileContracts()`), served at its pinned address; without it the executor is not deployed and
 * wcp sends one transaction per call.
 */
export function startStubChain(worker: string, opts: { executorCode?: string } = {}): StubChain {
  const t0 = Math.floor(Date.now() / 1000) - 100_000;
  const blocks: Block[] = [];
  const logs: Log[] = [];
  const txs = new Map<string, { tx: Transaction; from: string; block: number; status: number }>();
  /** Tx hash → its logs with their index in `logs`. */
  const logsOfTx = new Map<string, Array<[Log, number]>>();
  const nonces = new Map<string, number>();
  const pool = new Map<string, Map<number, Transaction>>();
  const completedAt: number[] = [];
  const unknown: Record<string, number> = {};
  const addrs = Object.fromEntries(Object.entries(STUB_ADDRESSES).map(([k, v]) => [lower(v), k]));
  const newBlock = (): Block => {
    const n = blocks.length;
    const b: Block = {
      n,
      ts: Math.max(blocks[n - 1]?.ts ?? 0, Math.floor(Date.now() / 1000)),
      hash: keccakText(`block ${n}`),
      txs: [],
    };
    blocks.push(b);
    return b;
  };
  newBlock();
  const ticker = setInterval(newBlock, 20);
  const nowTs = () => (blocks[blocks.length - 1] as Block).ts;
  const { exec } = createStubContracts({
    worker,
    t0,
    nowTs,
    blockNumber: () => blocks.length - 1,
    completedAt,
    unknown,
  });

  /** Wallet → the address its code delegates to (EIP-7702). */
  const delegations = new Map<string, string>();
  const abi = AbiCoder.defaultAbiCoder();
  const executor = lower(BATCH_EXECUTOR.address);
  const tryFail = batchExecutorIface.getEvent('ERC7579TryExecuteFail');
  if (!tryFail) throw new Error('ERC7579TryExecuteFail');

  /** A call to `to`: a wallet delegated to the batch executor runs `execute` / `simulate` as it would. */
  function run(to: string, data: string, from: string, apply: boolean): ExecResult {
    if (lower(to) !== lower(from) || delegations.get(lower(from)) !== executor) return exec(to, data, from, apply);
    if (data === '0x') return { ok: true, events: [], ret: '0x' };
    const d = batchExecutorIface.parseTransaction({ data });
    if (d?.name !== 'execute' && d?.name !== 'simulate') return { ok: false, events: [], ret: '0x' };
    const [calls] = abi.decode(
      ['tuple(address,uint256,bytes)[]'],
      d.args[d.name === 'execute' ? 1 : 0] as string,
    ) as unknown as [Array<[string, bigint, string]>];
    const events: ExecResult['events'] = [];
    const oks: boolean[] = [];
    const rets: string[] = [];
    calls.forEach(([target, , cd], i) => {
      const r = exec(target, cd, from, apply && d.name === 'execute');
      oks.push(r.ok);
      rets.push(r.ret);
      if (r.ok) events.push(...r.events.map((e) => ({ ...e, address: e.address ?? target })));
      else events.push({ address: from, ...batchExecutorIface.encodeEventLog(tryFail as never, [i, r.ret]) });
    });
    const ret = d.name === 'simulate' ? batchExecutorIface.encodeFunctionResult('simulate', [oks, rets]) : '0x';
    return { ok: true, events, ret };
  }

  /** Mines `tx` in its own block; returns the nonces it used (a self-sponsored delegation uses two). */
  function mine(tx: Transaction, from: string): number {
    const b = newBlock();
    let used = 1;
    for (const a of tx.authorizationList ?? []) {
      // Not recovered (the worker is the only sender); valid when it names the nonce after the tx's own.
      if (BigInt(a.nonce) !== BigInt(tx.nonce + used)) continue;
      const to = lower(a.address);
      if (to === '0x0000000000000000000000000000000000000000') delegations.delete(from);
      else delegations.set(from, to);
      used++;
    }
    const r = tx.to ? run(tx.to, tx.data, from, true) : { ok: true, events: [], ret: '0x' };
    const hash = tx.hash as string;
    b.txs.push(hash);
    txs.set(hash, { tx, from, block: b.n, status: r.ok ? 1 : 0 });
    const mine: Array<[Log, number]> = [];
    for (const e of r.events) {
      const l = { address: e.address ?? (tx.to as string), topics: e.topics, data: e.data, block: b.n, tx: hash };
      mine.push([l, logs.length]);
      logs.push(l);
    }
    logsOfTx.set(hash, mine);
    return used;
  }

  function send(raw: string): string {
    const tx = Transaction.from(raw);
    // Not recovered from the signature: the worker is the only sender (see the file comment).
    const from = lower(worker);
    if (txs.has(tx.hash as string)) return tx.hash as string;
    const next = nonces.get(from) ?? 0;
    if (tx.nonce < next) throw Object.assign(new Error('nonce too low'), { code: -32000 });
    const p = pool.get(from) ?? new Map<number, Transaction>();
    pool.set(from, p);
    p.set(tx.nonce, tx);
    let n = next;
    for (let t = p.get(n); t; t = p.get(n)) {
      p.delete(n);
      n += mine(t, from);
    }
    nonces.set(from, n);
    return tx.hash as string;
  }

  const blockJson = (b: Block, full: boolean) => ({
    number: hex(b.n),
    hash: b.hash,
    parentHash: b.n > 0 ? (blocks[b.n - 1] as Block).hash : `0x${'0'.repeat(64)}`,
    timestamp: hex(b.ts),
    gasLimit: hex(30_000_000),
    gasUsed: hex(b.txs.length * 100_000),
    baseFeePerGas: '0x7',
    miner: '0x0000000000000000000000000000000000000000',
    transactions: full ? b.txs.map((h) => txJson(h)) : b.txs,
  });
  const txJson = (h: string) => {
    const t = txs.get(h);
    if (!t) return null;
    const b = blocks[t.block] as Block;
    return {
      hash: h,
      from: t.from,
      to: t.tx.to,
      nonce: hex(t.tx.nonce),
      input: t.tx.data,
      blockNumber: hex(b.n),
      blockHash: b.hash,
      transactionIndex: '0x0',
      value: '0x0',
      gas: hex(t.tx.gasLimit),
      type: '0x2',
    };
  };
  const logJson = (l: Log, i: number) => ({
    address: l.address,
    topics: l.topics,
    data: l.data,
    blockNumber: hex(l.block),
    blockHash: (blocks[l.block] as Block).hash,
    transactionHash: l.tx,
    transactionIndex: '0x0',
    logIndex: hex(i),
    removed: false,
  });
  const blockArg = (tag: unknown): number => {
    if (tag === undefined || tag === 'latest' || tag === 'pending' || tag === 'safe' || tag === 'finalized')
      return blocks.length - 1;
    if (tag === 'earliest') return 0;
    return Number(BigInt(tag as string));
  };

  const counts: Record<string, number> = {};
  function call(method: string, params: unknown[]): unknown {
    counts[method] = (counts[method] ?? 0) + 1;
    switch (method) {
      case 'eth_chainId':
        return '0x7a69';
      case 'net_version':
        return '31337';
      case 'eth_blockNumber':
        return hex(blocks.length - 1);
      case 'eth_getBlockByNumber': {
        const b = blocks[blockArg(params[0])];
        return b ? blockJson(b, Boolean(params[1])) : null;
      }
      case 'eth_getCode': {
        const a = lower(String(params[0]));
        if (a === executor) return opts.executorCode ?? '0x';
        const d = delegations.get(a);
        if (d) return `0xef0100${d.slice(2)}`;
        return addrs[a] ? '0x6080604052' : '0x';
      }
      case 'eth_getStorageAt':
        // Read for the TaskQueue's queue ids: every queue is known (id 1).
        return `0x${'0'.repeat(63)}1`;
      case 'eth_getBalance':
        return hex(10n ** 22n);
      case 'eth_getTransactionCount': {
        const a = lower(String(params[0]));
        return hex(nonces.get(a) ?? 0);
      }
      case 'eth_gasPrice':
        return hex(1_000_000_007);
      case 'eth_maxPriorityFeePerGas':
        return hex(1_000_000_000);
      case 'eth_feeHistory': {
        const n = Number(BigInt(String(params[0])));
        return {
          oldestBlock: hex(Math.max(0, blocks.length - n)),
          baseFeePerGas: Array(n + 1).fill('0x7'),
          gasUsedRatio: Array(n).fill(0.1),
          reward: Array(n).fill(['0x3b9aca00']),
        };
      }
      case 'eth_estimateGas': {
        const c = params[0] as { to: string; data?: string; from?: string; authorizationList?: unknown[] };
        // A type-4 estimate: 21000 + 25000 per authorization (the chain accepts EIP-7702).
        if (c.authorizationList?.length) return hex(21_000 + 25_000 * c.authorizationList.length);
        const r = run(c.to, c.data ?? '0x', c.from ?? worker, false);
        if (!r.ok && addrs[lower(c.to)]) throw Object.assign(new Error('execution reverted'), { code: 3, data: '0x' });
        return hex(200_000);
      }
      case 'eth_call': {
        const c = params[0] as { to: string; data?: string; input?: string; from?: string };
        const r = run(c.to, c.data ?? c.input ?? '0x', c.from ?? worker, false);
        if (!r.ok) throw Object.assign(new Error('execution reverted'), { code: 3, data: '0x' });
        return r.ret;
      }
      case 'eth_sendRawTransaction':
        return send(String(params[0]));
      case 'eth_getTransactionByHash':
        return txJson(String(params[0]));
      case 'eth_getTransactionReceipt': {
        const h = String(params[0]);
        const t = txs.get(h);
        if (!t) return null;
        const b = blocks[t.block] as Block;
        const mineLogs = logsOfTx.get(h) ?? [];
        return {
          transactionHash: h,
          transactionIndex: '0x0',
          blockHash: b.hash,
          blockNumber: hex(b.n),
          from: t.from,
          to: t.tx.to,
          cumulativeGasUsed: hex(100_000),
          gasUsed: hex(100_000),
          effectiveGasPrice: '0x3b9aca07',
          status: hex(t.status),
          logs: mineLogs.map(([l, i]) => logJson(l, i)),
          logsBloom: `0x${'0'.repeat(512)}`,
          type: '0x2',
          contractAddress: null,
        };
      }
      case 'eth_getLogs': {
        const f = params[0] as {
          address?: string | string[];
          topics?: Array<string | string[] | null>;
          fromBlock?: string;
          toBlock?: string;
        };
        const from = blockArg(f.fromBlock ?? 'latest');
        const to = blockArg(f.toBlock ?? 'latest');
        const as = f.address === undefined ? null : (Array.isArray(f.address) ? f.address : [f.address]).map(lower);
        const out: unknown[] = [];
        // Logs are appended in block order: start at the first one of `from` (binary search), stop past `to`.
        let lo = 0;
        let hi = logs.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if ((logs[mid] as Log).block < from) lo = mid + 1;
          else hi = mid;
        }
        for (let i = lo; i < logs.length; i++) {
          const l = logs[i] as Log;
          if (l.block > to) break;
          if (as && !as.includes(lower(l.address))) continue;
          const ok = (f.topics ?? []).every(
            (t, k) => t === null || (Array.isArray(t) ? t.includes(l.topics[k] as string) : t === l.topics[k]),
          );
          if (ok) out.push(logJson(l, i));
        }
        return out;
      }
    }
    unknown[method] = (unknown[method] ?? 0) + 1;
    throw Object.assign(new Error(`the stub chain does not answer ${method}`), { code: -32601 });
  }

  const one = (c: { id?: unknown; method: string; params?: unknown[] }) => {
    try {
      return { jsonrpc: '2.0', id: c.id ?? null, result: call(c.method, c.params ?? []) };
    } catch (e) {
      const err = e as { code?: number; message?: string; data?: string };
      return {
        jsonrpc: '2.0',
        id: c.id ?? null,
        error: { code: err.code ?? -32000, message: err.message ?? String(e), ...(err.data ? { data: err.data } : {}) },
      };
    }
  };
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(req) {
      const body = (await req.json()) as unknown;
      const out = Array.isArray(body) ? body.map(one) : one(body as { method: string });
      return Response.json(out);
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    completedAt,
    unknown,
    counts,
    stop: () => {
      clearInterval(ticker);
      server.stop(true);
    },
  };
}
