/** `SubnetControlPlane` reads: whether a wallet is a registered, active worker (a startup check). */
import { WcpError } from '../internal/errors.ts';
import { controlPlaneIface } from './abi.ts';
import { decodeResult, encodeCall } from './abi-fast.ts';
import { ethCall } from './reads.ts';
import type { RpcTransport } from './transport.ts';

/** `isWorkerActive(wallet)` at the latest block; an empty reply (no contract there) is CHAIN_BAD_DATA. */
export async function isWorkerActive(rpc: RpcTransport, controlPlane: string, wallet: string): Promise<boolean> {
  const out = await ethCall(rpc, controlPlane, encodeCall(controlPlaneIface, 'isWorkerActive', [wallet]), 'latest');
  if (out === '0x')
    throw new WcpError('CHAIN_BAD_DATA', `no SubnetControlPlane contract at ${controlPlane} (empty reply)`);
  return Boolean(decodeResult(controlPlaneIface, 'isWorkerActive', out)[0]);
}
