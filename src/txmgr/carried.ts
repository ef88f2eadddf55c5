/**
 * What a nonce with no lane record carried: before a nonce gap is filled with a noop (which cancels whatever the
 * nonce held for good), the tx manager looks for a transaction of ours at that nonce that the node still knows —
 * its pool (`txpool_contentFrom`, else `txpool_content`, where the node has them) or a hash the store still names
 * (`tx:{id}` refs, read with `eth_getTransactionByHash`). One found is adopted: a lane record with its exact fields
 * (so re-signing gives the same bytes and hash, checked) and the kind and ids its call names, re-sent instead of
 * the noop. Lookups that a node does not answer count as "nothing found": the noop stays the last resort, and the
 * lifecycle re-derives what it carried from the chain.
 */
import { taskQueueIface, workflowEngineIface } from '../chain/abi.ts';
import type { RpcClient } from '../chain/transport.ts';
import { PREFIX } from '../store/keys.ts';
import { type BatchCall, type LaneTx, TxRefSchema } from '../store/records.ts';
import { decodeExecute } from '../chain/batch-executor.ts';
import type { Store } from '../store/store.ts';

/** A transaction as nodes report it (the fields wcp signs; hex quantities). */
export interface NodeTx {
  hash: string;
  from?: string;
  nonce: string;
  to?: string | null;
  input?: string;
  data?: string;
  value?: string;
  gas: string;
  type?: string;
  maxFeePerGas?: string;
  maxPriorityFeePerGas?: string;
}

type PoolSection = Record<string, NodeTx>;
interface PoolFrom {
  pending?: PoolSection;
  queued?: PoolSection;
}
interface PoolAll {
  pending?: Record<string, PoolSection>;
  queued?: Record<string, PoolSection>;
}

/** The lane kind and activity ids a call names; null when it is not one wcp sends. Pure. */
export function kindOfCall(data: string): Pick<LaneTx, 'kind' | 'activity_ids'> | null {
  try {
    const tq = taskQueueIface.parseTransaction({ data });
    if (tq) {
      const id = (i: number) => String(tq.args[i]);
      switch (tq.name) {
        case 'claimActivity':
          return { kind: 'claim', activity_ids: [id(0)] };
        case 'claimActivities':
          return { kind: 'claim_batch', activity_ids: (tq.args[0] as unknown[]).map(String) };
        case 'heartbeatBatch':
          return { kind: 'heartbeat', activity_ids: (tq.args[0] as unknown[]).map(String) };
        case 'completeActivity':
          return { kind: 'complete', activity_ids: [id(0)] };
        case 'failActivity':
          return { kind: 'fail', activity_ids: [id(0)] };
      }
    }
  } catch {
    // not a TaskQueue call
  }
  try {
    const wf = workflowEngineIface.parseTransaction({ data });
    if (wf?.name === 'resumeWorkflow') return { kind: 'resume', activity_ids: [] };
  } catch {
    // not a WorkflowEngine call
  }
  return null;
}

/**
 * The lane kind, ids and calls of a batch (the wallet's call to itself running the batch executor's `execute`); null
 * when it is not one or names a call wcp does not send. A resume's activity is not in its calldata: its ids are
 * empty (the lifecycle re-derives it from the chain). Pure.
 */
export function batchOf(data: string): Pick<LaneTx, 'kind' | 'activity_ids' | 'calls'> | null {
  let inner: Array<{ to: string; data: string }>;
  try {
    inner = decodeExecute(data);
  } catch {
    return null;
  }
  const calls: BatchCall[] = [];
  for (const c of inner) {
    const k = kindOfCall(c.data);
    if (!k || k.kind === 'noop' || k.kind === 'batch' || k.kind === 'delegate') return null;
    calls.push({ kind: k.kind, activity_ids: k.activity_ids });
  }
  return { kind: 'batch', activity_ids: [...new Set(calls.flatMap((c) => c.activity_ids))], calls };
}

/** A lane record (state `sent`) with a found transaction's exact fields; null when wcp would not have sent it. Pure. */
export function recordOfNodeTx(tx: NodeTx, address: string, t: number): LaneTx | null {
  if (tx.from !== undefined && tx.from.toLowerCase() !== address.toLowerCase()) return null;
  if (tx.type !== undefined && Number(BigInt(tx.type)) !== 2) return null;
  if (!tx.to || tx.maxFeePerGas === undefined || tx.maxPriorityFeePerGas === undefined) return null;
  const data = tx.input ?? tx.data ?? '0x';
  const self = tx.to.toLowerCase() === address.toLowerCase();
  const call =
    data === '0x'
      ? self
        ? { kind: 'noop' as const, activity_ids: [] }
        : null
      : self
        ? batchOf(data)
        : kindOfCall(data);
  if (!call) return null;
  return {
    nonce: Number(BigInt(tx.nonce)),
    ...call,
    to: tx.to,
    data,
    value: BigInt(tx.value ?? '0').toString(),
    gas_limit: BigInt(tx.gas).toString(),
    max_fee_per_gas: BigInt(tx.maxFeePerGas).toString(),
    max_priority_fee_per_gas: BigInt(tx.maxPriorityFeePerGas).toString(),
    fee_cap_wei: BigInt(tx.maxFeePerGas).toString(),
    hashes: [tx.hash],
    attempts: 1,
    state: 'sent',
    created_at_ms: t,
    updated_at_ms: t,
  };
}

/** Our transactions in the node's pool by nonce (empty when the node has no txpool methods). */
async function fromPool(rpc: RpcClient, address: string): Promise<Map<number, NodeTx>> {
  const out = new Map<number, NodeTx>();
  const add = (section: PoolSection | undefined) => {
    for (const tx of Object.values(section ?? {})) out.set(Number(BigInt(tx.nonce)), tx);
  };
  try {
    const p = await rpc.request<PoolFrom | null>('txpool_contentFrom', [address]);
    add(p?.pending);
    add(p?.queued);
    return out;
  } catch {
    // not every node has txpool_contentFrom; try the whole pool
  }
  try {
    const p = await rpc.request<PoolAll | null>('txpool_content', []);
    const mine = (s: Record<string, PoolSection> | undefined) =>
      Object.entries(s ?? {}).find(([a]) => a.toLowerCase() === address.toLowerCase())?.[1];
    add(mine(p?.pending));
    add(mine(p?.queued));
  } catch {
    // no txpool methods on this node
  }
  return out;
}

/**
 * Looks for what each of `nonces` carried (see the file comment); returns the adoptable records by nonce. `sign`
 * re-derives a record's hash: a record whose re-signed hash differs from the found one (not signed by this wallet
 * the way wcp signs) is not adopted.
 */
export async function findCarried(
  ctx: { rpc: RpcClient; store: Store; address: string; now: () => number },
  nonces: readonly number[],
  sign: (rec: LaneTx) => Promise<{ raw: string; hash: string }>,
): Promise<Map<number, { rec: LaneTx; signed: { raw: string; hash: string } }>> {
  const found = new Map<number, { rec: LaneTx; signed: { raw: string; hash: string } }>();
  if (nonces.length === 0) return found;
  const wanted = new Set(nonces);
  const candidates = new Map<number, NodeTx>();
  for (const [n, tx] of await fromPool(ctx.rpc, ctx.address)) if (wanted.has(n)) candidates.set(n, tx);
  // Hashes the store still names for these nonces (a `tx:{id}` ref outlives its pruned lane record).
  for (const { value } of ctx.store.list(PREFIX.tx, TxRefSchema)) {
    if (!wanted.has(value.nonce) || candidates.has(value.nonce) || !value.tx_hash) continue;
    try {
      const tx = await ctx.rpc.request<NodeTx | null>('eth_getTransactionByHash', [value.tx_hash]);
      if (tx && Number(BigInt(tx.nonce)) === value.nonce) candidates.set(value.nonce, tx);
    } catch {
      // unknown to this node: nothing found
    }
  }
  const t = ctx.now();
  for (const [n, tx] of candidates) {
    const rec = recordOfNodeTx(tx, ctx.address, t);
    if (!rec) continue;
    const signed = await sign(rec);
    if (signed.hash.toLowerCase() === tx.hash.toLowerCase()) found.set(n, { rec, signed });
  }
  return found;
}
