/**
 * What the lifecycle end-to-end tests (`e2e-lifecycle*.test.ts`, `e2e-reorg.test.ts`) check beyond the shared kit
 * in `support/`: that the nonce lane agrees with the chain, and a count helper for their event tallies.
 */
import { expect } from 'bun:test';
import type { Sandbox } from '../scripts/lib/wcp-process.ts';
import { type ChainTx, rpcBatch, walletTxs } from './support/chain.ts';
import { type LaneRec, laneRecords } from './support/store.ts';

/** How many of `xs` fall under each key. */
export function countBy<T>(xs: T[], key: (x: T) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of xs) m.set(key(x), (m.get(key(x)) ?? 0) + 1);
  return m;
}

/**
 * The lane agrees with the chain: every nonce the wallet used is a lane record's, or the authorization nonce of a
 * delegation record (a self-sponsored EIP-7702 delegation uses its own nonce N and N+1), with no gap; every record
 * is confirmed with the hash the chain mined at that nonce, and every mined tx of the wallet is one of the hashes
 * recorded for its nonce. Returns the wallet's mined txs.
 */
export async function expectLaneMatchesChain(sb: Sandbox, url: string, address: string): Promise<ChainTx[]> {
  const recs = laneRecords(sb);
  const [latest, pending] = await rpcBatch<string>(url, [
    ['eth_getTransactionCount', [address, 'latest']],
    ['eth_getTransactionCount', [address, 'pending']],
  ]);
  const chainNonce = Number(BigInt(latest as string));
  expect(Number(BigInt(pending as string))).toBe(chainNonce);
  const byRecNonce = new Map(recs.map((r) => [r.nonce, r]));
  const authNonces = recs
    .filter((r) => r.kind === 'delegate')
    .flatMap((r) => (r.authorization_list ?? []).map((a) => Number(a.nonce)));
  const used = [...recs.map((r) => r.nonce), ...authNonces].sort((a, b) => a - b);
  expect(used).toEqual(Array.from({ length: chainNonce }, (_, i) => i));
  const txs = (await walletTxs(url, [address])).get(address.toLowerCase()) ?? [];
  expect(txs.length).toBe(recs.length);
  const byNonce = countBy(txs, (t) => String(t.nonce));
  expect([...byNonce.values()].every((c) => c === 1)).toBe(true);
  for (const t of txs) {
    const r = byRecNonce.get(t.nonce) as LaneRec;
    expect({ nonce: t.nonce, state: r?.state, mined: r?.mined_hash }).toEqual({
      nonce: t.nonce,
      state: 'confirmed',
      mined: t.hash,
    });
    expect(r.hashes).toContain(t.hash);
  }
  return txs;
}
