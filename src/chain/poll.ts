/**
 * `TaskQueue.pollActivity(queue, offset)` for offsets 0..count-1 in one Multicall3 round trip at the latest
 * block: the activities the queue offers now. Chain data is untrusted: an id 0 with `hasActivity` is bad data,
 * strings are bounded, a repeated id is reported once.
 */
import { WcpError } from '../internal/errors.ts';
import { taskQueueIface } from './abi.ts';
import { decodeResult, encodeCall } from './abi-fast.ts';
import { prepareMulticall } from './reads.ts';
import type { RpcTransport } from './transport.ts';
import { chainText, chainUint } from './values.ts';

/** One available activity as `pollActivity` reports it. */
export interface PolledActivity {
  activityId: string;
  activityType: string;
  inputRef: string;
  expiresAtS: number;
}

/** The poll's multicall, encoded once per (addresses, queue, count): a poller asks the same one every round. */
let prepared: { key: string; call: ReturnType<typeof prepareMulticall> } | undefined;
function pollCall(addrs: { taskQueue: string; multicall3: string }, queue: string, count: number) {
  const key = `${addrs.multicall3}\u0000${addrs.taskQueue}\u0000${count}\u0000${queue}`;
  if (prepared?.key !== key) {
    const calls = Array.from({ length: count }, (_, i) => ({
      target: addrs.taskQueue,
      callData: encodeCall(taskQueueIface, 'pollActivity', [queue, i]),
    }));
    prepared = { key, call: prepareMulticall(addrs.multicall3, calls, count) };
  }
  return prepared.call;
}

/** Up to `count` available activities of `queue` from offset 0; stops at the first offset with none. */
export async function pollActivities(
  rpc: RpcTransport,
  addrs: { taskQueue: string; multicall3: string },
  queue: string,
  count: number,
): Promise<PolledActivity[]> {
  const results = await pollCall(addrs, queue, count)(rpc, 'latest');
  const out: PolledActivity[] = [];
  const seen = new Set<string>();
  for (const r of results) {
    if (!r.success || r.returnData === '0x') break;
    const d = decodeResult(taskQueueIface, 'pollActivity', r.returnData);
    if (!d[0]) break;
    const id = (d[1] as bigint).toString();
    if (id === '0') throw new WcpError('CHAIN_BAD_DATA', 'pollActivity returned hasActivity with activity id 0');
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({
      activityId: id,
      activityType: chainText('activityType', d[2]),
      inputRef: chainText('inputRef', d[3]),
      expiresAtS: chainUint('expiresAt', d[4]),
    });
  }
  return out;
}
