/**
 * Raw JSON-RPC against a node (anvil) for tests and benchmarks: batched requests and the head block number. No
 * daemon code, so what it reads is chain truth to check wcp against. One call at a time: `rpcCall` in `anvil.ts`.
 */

/** Calls per HTTP request. */
const BATCH = 100;

/** JSON-RPC batch (sent in chunks of 100), results in call order; throws on the first error in any answer. */
export async function rpcBatch<T>(url: string, calls: Array<[string, unknown[]]>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < calls.length; i += BATCH) {
    const chunk = calls.slice(i, i + BATCH);
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chunk.map(([method, params], j) => ({ jsonrpc: '2.0', id: j, method, params }))),
    });
    const body = (await res.json()) as Array<{ id: number; result?: T; error?: { message: string } }>;
    body.sort((a, b) => a.id - b.id);
    for (const r of body) {
      if (r.error) throw new Error(`rpc batch: ${r.error.message}`);
      out.push(r.result as T);
    }
  }
  return out;
}

/** The node's head block number (`eth_blockNumber`). */
export async function blockNumber(url: string): Promise<number> {
  return Number(BigInt((await rpcBatch<string>(url, [['eth_blockNumber', []]]))[0] as string));
}
