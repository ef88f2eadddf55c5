/**
 * Issue 11, storage confinement on a real chain: anvil with the reference contracts, the dev subnet-api checking
 * the chain, and wcp's broker signing with a session its wallet delegated to. The owner (the deployer: TaskQueue
 * owner and workflow starter) seeds `seed/input.bin`; workflow A's step 0 reads the seed and writes its output,
 * step 1 reads step 0's output; a stranger's workflow naming A's output as its input is refused — by wcp's broker
 * before asking, and by the dev subnet-api when a correctly signed request bypasses wcp.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, type ServiceError, status } from '@grpc/grpc-js';
import { Contract, JsonRpcProvider, NonceManager, Wallet } from 'ethers';
import { type Anvil, startAnvil } from '../scripts/lib/anvil.ts';
import { deployStack, eventArgs, registerWorker, type Stack } from '../scripts/lib/deploy.ts';
import { TASK_QUEUE_ABI, WORKFLOW_ENGINE_ABI } from '../src/chain/abi.ts';
import { createRpcTransport } from '../src/chain/transport.ts';
import { type DevSubnetApi, startDevSubnetApi, uploadAsOwner } from '../scripts/lib/subnet-api/index.ts';
import { isWcpError, type WcpError } from '../src/internal/errors.ts';
import { createLogger } from '../src/internal/logger.ts';
import { createPresignSigner, createStorageSession, type PresignSigner } from '../src/storage/auth.ts';
import { createStorageBroker, type StorageBroker } from '../src/storage/broker.ts';
import { createEntitlementChain } from '../src/storage/entitlement.ts';
import { delegationToWire, loadStorageBrokerService } from '../src/storage/wire.ts';

const quiet = createLogger('test', { level: 'error', write: () => {} });
const QUEUE = 'conf';

let anvil: Anvil;
let stack: Stack;
let api: DevSubnetApi;
let dir: string;
let provider: JsonRpcProvider;
let broker: StorageBroker;
let workerSigner: PresignSigner;
/** Activity ids: workflow A's steps, the stranger's step. */
const ids = { a0: '', a1: '', s0: '' };
/** Step-0 activity id → its workflow instance. */
const instances = new Map<string, string>();
const signers = new Map<string, NonceManager>();

const rawBroker = () => new (loadStorageBrokerService())(api.grpcEndpoint, credentials.createInsecure());

/** A Presign call with a valid signature by `signer`, straight to the server (wcp's checks bypassed). */
async function directPresign(
  signer: PresignSigner,
  r: { acting: string; namespace: string; key: string; method: 'GET' | 'PUT' },
): Promise<ServiceError | null> {
  const proof = signer.sign({
    chainId: stack.chainId,
    actingActivityId: r.acting,
    namespace: r.namespace,
    key: r.key,
    method: r.method,
    contentType: '',
    ttlSeconds: 60,
  });
  const client = rawBroker();
  try {
    return await new Promise((resolve) => {
      (client as unknown as Record<string, (...a: unknown[]) => void>).Presign!.call(
        client,
        {
          version: 1,
          worker_address: signer.address,
          activity_id: r.namespace,
          key: r.key,
          method: r.method === 'GET' ? 'METHOD_GET' : 'METHOD_PUT',
          content_type: '',
          ttl_seconds: 60,
          acting_activity_id: r.acting,
          auth_expires_at_unix_ms: proof.expiresAtMs,
          auth_nonce: proof.nonce,
          signature: proof.signature,
          delegation: proof.delegation ? delegationToWire(proof.delegation) : null,
        },
        (err: ServiceError | null) => resolve(err),
      );
    });
  } finally {
    client.close();
  }
}

async function denied(p: Promise<unknown>): Promise<WcpError> {
  try {
    await p;
  } catch (e) {
    if (isWcpError(e)) return e;
    throw e;
  }
  throw new Error('expected a refusal, got a URL');
}

async function send(key: string, to: string, abi: readonly string[], fn: string, args: unknown[]) {
  // One nonce manager per key: the provider caches the pending count for a moment.
  const signer = signers.get(key) ?? new NonceManager(new Wallet(key, provider));
  signers.set(key, signer);
  const c = new Contract(to, abi, signer);
  const tx = await (c[fn] as (...a: unknown[]) => Promise<{ wait(): Promise<{ logs: never[] }> }>)(...args);
  return await tx.wait();
}

/** Starts a workflow from `key`; the id of its step-0 activity (its instance id goes to `instances`). */
async function startWorkflow(key: string, steps: Array<[string, string, number]>): Promise<string> {
  const r = await send(key, stack.addresses.workflowEngine, WORKFLOW_ENGINE_ABI, 'startWorkflow', [QUEUE, steps]);
  const tq = new Contract(stack.addresses.taskQueue, TASK_QUEUE_ABI).interface;
  const wf = new Contract(stack.addresses.workflowEngine, WORKFLOW_ENGINE_ABI).interface;
  const id = String(eventArgs(tq, r.logs, stack.addresses.taskQueue, 'ActivityEnqueued')[0]?.activityId);
  instances.set(id, String(eventArgs(wf, r.logs, stack.addresses.workflowEngine, 'WorkflowStarted')[0]?.instanceId));
  return id;
}

const logFor = (namespace: string) => api.presignLog().filter((l) => l.namespace === namespace);

beforeAll(async () => {
  anvil = await startAnvil();
  stack = await deployStack({ rpcUrl: anvil.url, deployerKey: anvil.accounts[0]!.privateKey });
  for (const i of [1, 2]) await registerWorker(stack, anvil.accounts[i]!.address, 8);
  provider = new JsonRpcProvider(anvil.url, stack.chainId, { staticNetwork: true });
  dir = mkdtempSync(join(tmpdir(), 'wcp-storage-conf-'));
  api = await startDevSubnetApi({
    dataDir: dir,
    logger: quiet,
    chain: {
      rpcUrl: anvil.url,
      chainId: stack.chainId,
      taskQueue: stack.addresses.taskQueue,
      workflowEngine: stack.addresses.workflowEngine,
    },
  });
  const owner = anvil.accounts[0]!;
  const worker = anvil.accounts[1]!;
  const stranger = anvil.accounts[5]!;
  await uploadAsOwner({
    endpoint: api.grpcEndpoint,
    ownerKey: owner.privateKey,
    chainId: stack.chainId,
    namespace: 'seed',
    key: 'input.bin',
    bytes: 'seed bytes',
  });
  workerSigner = createPresignSigner(
    createStorageSession({ walletKey: worker.privateKey, chainId: stack.chainId, ttlMs: 3_600_000 }),
  );
  const rpc = createRpcTransport({
    urls: [anvil.url],
    chainId: stack.chainId,
    timeoutMs: 5000,
    maxLagBlocks: 10,
    endpointBackoffMs: 100,
    endpointBackoffMaxMs: 1000,
  });
  broker = createStorageBroker({
    endpoint: api.grpcEndpoint,
    signer: workerSigner,
    chainId: stack.chainId,
    chain: createEntitlementChain(rpc, stack.addresses),
    logger: quiet,
  });

  // Workflow A (the owner's): step 0 reads the seed; step 1 takes step 0's result.
  ids.a0 = await startWorkflow(owner.privateKey, [
    ['t', 'blob:seed/input.bin', 0],
    ['t', '', 0],
  ]);
  await send(worker.privateKey, stack.addresses.taskQueue, TASK_QUEUE_ABI, 'claimActivity', [ids.a0]);
  // The stranger's workflow names A's (future) output as its input.
  ids.s0 = await startWorkflow(stranger.privateKey, [['t', `blob:${ids.a0}/out.bin`, 0]]);
  await send(worker.privateKey, stack.addresses.taskQueue, TASK_QUEUE_ABI, 'claimActivity', [ids.s0]);
}, 120_000);

afterAll(async () => {
  broker?.close();
  await api?.stop();
  await anvil?.stop();
  provider?.destroy();
  stack?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('storage confinement on chain', () => {
  test('the seed is owned by its signed uploader', () => {
    expect(api.owners()).toEqual({ seed: anvil.accounts[0]!.address.toLowerCase() });
  });

  test("step 0 of the owner's workflow reads the owner's seed and writes its own namespace", async () => {
    const get = await broker.presign({ activityId: 'seed', actingActivityId: ids.a0, key: 'input.bin', method: 'GET' });
    expect(await (await fetch(get.url)).text()).toBe('seed bytes');
    const put = await broker.presign({ activityId: ids.a0, key: 'out.bin', method: 'PUT' });
    expect((await fetch(put.url, { method: 'PUT', body: 'A step 0 output' })).status).toBe(201);
    // Not elsewhere: PUT in another namespace is refused by the broker before asking.
    const before = api.presignLog().length;
    const e = await denied(broker.presign({ activityId: 'seed', actingActivityId: ids.a0, key: 'x', method: 'PUT' }));
    expect(e.code).toBe('STORAGE_DENIED');
    expect(api.presignLog().length).toBe(before);
    expect(
      (await directPresign(workerSigner, { acting: ids.a0, namespace: 'seed', key: 'x', method: 'PUT' }))?.code,
    ).toBe(status.PERMISSION_DENIED);
  });

  test("the stranger's cross-read is refused by wcp's broker and, bypassed, by the subnet-api", async () => {
    const e = await denied(
      broker.presign({ activityId: ids.a0, actingActivityId: ids.s0, key: 'out.bin', method: 'GET' }),
    );
    expect(e.code).toBe('STORAGE_DENIED');
    expect(e.message).toContain('not an earlier step');
    expect(logFor(ids.a0).filter((l) => l.acting === ids.s0)).toEqual([]);

    const err = await directPresign(workerSigner, { acting: ids.s0, namespace: ids.a0, key: 'out.bin', method: 'GET' });
    expect(err?.code).toBe(status.PERMISSION_DENIED);
    expect(err?.details).toContain('not an earlier step');
    // Nor may the stranger's workflow read the owner's seed: its owner is the stranger.
    const seed = await denied(
      broker.presign({ activityId: 'seed', actingActivityId: ids.s0, key: 'input.bin', method: 'GET' }),
    );
    expect(seed.message).toContain('PERMISSION_DENIED');
  });

  test("step 1 reads step 0's output once the workflow resumed; a worker not holding it cannot", async () => {
    const worker = anvil.accounts[1]!;
    await send(worker.privateKey, stack.addresses.taskQueue, TASK_QUEUE_ABI, 'completeActivity', [
      ids.a0,
      `json:{"out":"blob:${ids.a0}/out.bin"}`,
    ]);
    const r = await send(worker.privateKey, stack.addresses.workflowEngine, WORKFLOW_ENGINE_ABI, 'resumeWorkflow', [
      instances.get(ids.a0),
    ]);
    const tq = new Contract(stack.addresses.taskQueue, TASK_QUEUE_ABI).interface;
    ids.a1 = String(eventArgs(tq, r.logs, stack.addresses.taskQueue, 'ActivityEnqueued')[0]?.activityId);
    await send(worker.privateKey, stack.addresses.taskQueue, TASK_QUEUE_ABI, 'claimActivity', [ids.a1]);

    const get = await broker.presign({ activityId: ids.a0, actingActivityId: ids.a1, key: 'out.bin', method: 'GET' });
    expect(await (await fetch(get.url)).text()).toBe('A step 0 output');

    // Step 0 is Completed: its namespace takes no more writes from anyone.
    const late = await denied(broker.presign({ activityId: ids.a0, key: 'late.bin', method: 'PUT' }));
    expect(late.message).toContain('PERMISSION_DENIED');

    // Another registered worker, correctly signed, asking for an activity it does not hold.
    const other = createPresignSigner(
      createStorageSession({ walletKey: anvil.accounts[2]!.privateKey, chainId: stack.chainId, ttlMs: 60_000 }),
    );
    const err = await directPresign(other, { acting: ids.a1, namespace: ids.a0, key: 'out.bin', method: 'GET' });
    expect(err?.code).toBe(status.PERMISSION_DENIED);
    expect(err?.details).toContain('is not claimed by');
  });

  test('namespace ownership: a stranger can neither read nor overwrite the seed, but may own a namespace of its own', async () => {
    const stranger = createPresignSigner({ key: anvil.accounts[5]!.privateKey });
    for (const method of ['GET', 'PUT'] as const) {
      const err = await directPresign(stranger, { acting: '', namespace: 'seed', key: 'input.bin', method });
      expect(err?.code).toBe(status.PERMISSION_DENIED);
    }
    expect(await directPresign(stranger, { acting: '', namespace: 'mine', key: 'a.bin', method: 'PUT' })).toBeNull();
    expect(api.owners().mine).toBe(anvil.accounts[5]!.address.toLowerCase());
  });
});
