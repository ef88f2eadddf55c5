/**
 * EIP-7702 authorizations in lane records: to and from ethers' form, and the nonces they take. Every
 * authorization wcp signs is the wallet's own (authority = the sender), so a type-4 record at nonce N carries an
 * authorization for N + 1 and, once mined, the chain's nonce is N + 2 (N + 1 if the node skipped the
 * authorization). The lane must never give N + 1 to another transaction nor fill it with a noop: `authNonces` is
 * what the re-sync plan and the hole watch leave alone.
 */
import { type Authorization as EthersAuthorization, Signature } from 'ethers';
import type { Authorization, LaneTx } from '../store/records.ts';

/** A signed ethers authorization as a lane record stores it. */
export function recordAuthorization(a: EthersAuthorization): Authorization {
  return {
    chain_id: a.chainId.toString(),
    address: a.address,
    nonce: Number(a.nonce),
    y_parity: a.signature.yParity,
    r: a.signature.r,
    s: a.signature.s,
  };
}

/** A stored authorization in the form ethers signs a type-4 transaction with. */
export function ethersAuthorization(a: Authorization): EthersAuthorization {
  return {
    address: a.address,
    nonce: BigInt(a.nonce),
    chainId: BigInt(a.chain_id),
    signature: Signature.from({ r: a.r, s: a.s, yParity: a.y_parity }),
  };
}

/** A stored authorization as JSON-RPC takes it (`eth_estimateGas`'s `authorizationList`). */
export function rpcAuthorization(a: Authorization): Record<string, string> {
  const hex = (n: number | bigint) => `0x${n.toString(16)}`;
  return {
    chainId: hex(BigInt(a.chain_id)),
    address: a.address,
    nonce: hex(a.nonce),
    yParity: hex(a.y_parity),
    r: a.r,
    s: a.s,
  };
}

/** The nonces the authorizations of `records` take (records given up, `failed`, take none). */
export function authNonces(records: Iterable<Pick<LaneTx, 'authorization_list' | 'state'>>): Set<number> {
  const out = new Set<number>();
  for (const r of records) {
    if (r.state === 'failed') continue;
    for (const a of r.authorization_list ?? []) out.add(a.nonce);
  }
  return out;
}
