import { describe, expect, test } from 'bun:test';
import { WcpError } from '../internal/errors.ts';
import { createLogger } from '../internal/logger.ts';
import { createPresignSigner } from './auth.ts';
import { createStorageBroker } from './broker.ts';
import type { ActivityInfo, EntitlementChain } from './entitlement.ts';

const quiet = createLogger('test', { level: 'error', write: () => {} });
const KEY = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d';

/** A chain seam where activity 6 (step 1 of workflow 7) comes and goes with a reorg; 5 is its step 0. */
function chainWith(known: Map<string, ActivityInfo>): EntitlementChain {
  return {
    activity: async (id) =>
      known.get(id) ?? {
        id,
        exists: false,
        workflowInstance: '0',
        stepIndex: 0,
        status: 0,
        worker: '',
        isExpired: false,
      },
    ownerOf: async () => '',
  };
}

async function refusal(p: Promise<unknown>): Promise<WcpError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof WcpError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('storage broker: refusals resting on an activity missing on chain', () => {
  test('retryable (STORAGE_CHAIN_UNSETTLED) until the chain settled, then STORAGE_DENIED', async () => {
    let t = 1_000_000;
    const step0: ActivityInfo = {
      id: '5',
      exists: true,
      workflowInstance: '7',
      stepIndex: 0,
      status: 3,
      worker: '',
      isExpired: false,
    };
    const broker = createStorageBroker({
      endpoint: '127.0.0.1:1',
      signer: createPresignSigner({ key: KEY }),
      chainId: 31337,
      chain: chainWith(new Map([['5', step0]])),
      logger: quiet,
      now: () => t,
      chainSettleMs: 10_000,
    });
    try {
      const read = { activityId: '5', actingActivityId: '6', key: 'out.bin', method: 'GET' as const };
      const first = await refusal(broker.presign(read));
      expect(first.code).toBe('STORAGE_CHAIN_UNSETTLED');
      expect(first.retryable).toBe(true);
      expect(first.message).toContain('activity 6 does not exist on chain');
      t += 9_000;
      expect((await refusal(broker.presign(read))).code).toBe('STORAGE_CHAIN_UNSETTLED');
      t += 2_000;
      const last = await refusal(broker.presign(read));
      expect(last.code).toBe('STORAGE_DENIED');
      expect(last.retryable).toBe(false);
      // A refusal the chain settles nothing about (PUT elsewhere) is final at once.
      const put = await refusal(broker.presign({ ...read, method: 'PUT' }));
      expect(put.code).toBe('STORAGE_DENIED');
    } finally {
      broker.close();
    }
  });
});

describe('storage broker: the service refuses an activity missing on chain', () => {
  test('PERMISSION_DENIED "does not exist on chain" is STORAGE_CHAIN_UNSETTLED until the chain settled', async () => {
    const { Server, ServerCredentials, status } = await import('@grpc/grpc-js');
    const { loadStorageBrokerService } = await import('./wire.ts');
    const { classifyStorageFailure } = await import('./refusal.ts');
    let why = 'activity 0 does not exist on chain';
    const server = new Server();
    server.addService(loadStorageBrokerService().service, {
      Presign(_call: unknown, cb: (err: { code: number; details: string }) => void) {
        cb({ code: status.PERMISSION_DENIED, details: why });
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    let t = 1_000_000;
    const broker = createStorageBroker({
      endpoint: `127.0.0.1:${port}`,
      signer: createPresignSigner({ key: KEY }),
      chainId: 31337,
      logger: quiet,
      now: () => t,
      chainSettleMs: 10_000,
    });
    try {
      // The health probe names an activity no chain holds: its refusal is the expected answer (service up), never
      // unsettled, or the health would wait for ever and nothing needing storage would be claimed.
      const probe = await refusal(
        broker.presign({
          activityId: '0',
          actingActivityId: '0',
          key: 'wcp-storage-probe',
          method: 'GET',
          probe: true,
        }),
      );
      expect(probe.code).toBe('STORAGE_DENIED');
      expect(classifyStorageFailure(probe)).toEqual({ kind: 'activity' });
      why = 'activity 6 does not exist on chain';
      const own = { activityId: '6', key: 'in.bin', method: 'GET' as const };
      const first = await refusal(broker.presign(own));
      expect(first.code).toBe('STORAGE_CHAIN_UNSETTLED');
      expect(first.retryable).toBe(true);
      expect(first.message).toContain('does not exist on chain');
      expect(classifyStorageFailure(first)).toEqual({ kind: 'unsettled' });
      t += 9_000;
      expect((await refusal(broker.presign(own))).code).toBe('STORAGE_CHAIN_UNSETTLED');
      t += 2_000;
      const last = await refusal(broker.presign(own));
      expect(last.code).toBe('STORAGE_DENIED');
      expect(classifyStorageFailure(last)).toEqual({ kind: 'activity' });
      // Any other PERMISSION_DENIED is about the request's data: final at once.
      why = 'worker 0xabc may not GET objects of 7';
      const other = await refusal(broker.presign({ ...own, activityId: '7' }));
      expect(other.code).toBe('STORAGE_DENIED');
    } finally {
      broker.close();
      server.forceShutdown();
    }
  });
});
