import { describe, expect, test } from 'bun:test';
import { taskQueueIface, workflowEngineIface } from '../chain/abi.ts';
import { encodeExecute } from '../chain/batch-executor.ts';
import { batchOf, kindOfCall, recordOfNodeTx } from './carried.ts';

const ME = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
const TQ = '0x5FbDB2315678afecb367f032d93F642f64180aa3';

describe('carried: what a found transaction meant', () => {
  test('each call wcp sends maps to its lane kind and ids; anything else is not adopted', () => {
    expect(kindOfCall(taskQueueIface.encodeFunctionData('claimActivities', [[5n, 6n]]))).toEqual({
      kind: 'claim_batch',
      activity_ids: ['5', '6'],
    });
    expect(kindOfCall(taskQueueIface.encodeFunctionData('completeActivity', [7n, 'blob:7/out']))).toEqual({
      kind: 'complete',
      activity_ids: ['7'],
    });
    expect(kindOfCall(workflowEngineIface.encodeFunctionData('resumeWorkflow', [3n]))).toEqual({
      kind: 'resume',
      activity_ids: [],
    });
    expect(kindOfCall('0xdeadbeef')).toBeNull();
  });

  test('a record keeps the exact fields; another sender, a legacy tx or a transfer elsewhere is refused', () => {
    const tx = {
      hash: '0xabc',
      from: ME.toLowerCase(),
      nonce: '0x4',
      to: TQ,
      input: taskQueueIface.encodeFunctionData('failActivity', [9n, 'bad']),
      value: '0x0',
      gas: '0x1d4c0',
      type: '0x2',
      maxFeePerGas: '0x12a05f200',
      maxPriorityFeePerGas: '0x3b9aca00',
    };
    expect(recordOfNodeTx(tx, ME, 1)).toMatchObject({
      nonce: 4,
      kind: 'fail',
      activity_ids: ['9'],
      gas_limit: '120000',
      max_fee_per_gas: '5000000000',
      max_priority_fee_per_gas: '1000000000',
      hashes: ['0xabc'],
      state: 'sent',
    });
    expect(recordOfNodeTx({ ...tx, from: TQ }, ME, 1)).toBeNull();
    expect(recordOfNodeTx({ ...tx, type: '0x0' }, ME, 1)).toBeNull();
    expect(recordOfNodeTx({ ...tx, input: '0x' }, ME, 1)).toBeNull();
    expect(recordOfNodeTx({ ...tx, to: ME, input: '0x' }, ME, 1)?.kind).toBe('noop');
  });

  test('a batch found in the pool is adopted with its calls; a batch naming a call wcp never sends is not', () => {
    const WF = '0x0000000000000000000000000000000000000bbb';
    const data = encodeExecute([
      { to: TQ, data: taskQueueIface.encodeFunctionData('completeActivity', [7n, 'json:{}']) },
      { to: WF, data: workflowEngineIface.encodeFunctionData('resumeWorkflow', [3n]) },
      { to: TQ, data: taskQueueIface.encodeFunctionData('heartbeatBatch', [[7n, 8n]]) },
    ]);
    expect(batchOf(data)).toEqual({
      kind: 'batch',
      activity_ids: ['7', '8'],
      calls: [
        { kind: 'complete', activity_ids: ['7'] },
        { kind: 'resume', activity_ids: [] },
        { kind: 'heartbeat', activity_ids: ['7', '8'] },
      ],
    });
    const tx = {
      hash: '0xabc',
      from: ME.toLowerCase(),
      nonce: '0x4',
      to: ME,
      input: data,
      gas: '0x1d4c0',
      type: '0x2',
      maxFeePerGas: '0x1',
      maxPriorityFeePerGas: '0x1',
    };
    expect(recordOfNodeTx(tx, ME, 1)?.calls).toHaveLength(3);
    expect(batchOf(encodeExecute([{ to: TQ, data: '0xdeadbeef' }]))).toBeNull();
    expect(batchOf(taskQueueIface.encodeFunctionData('completeActivity', [7n, 'x']))).toBeNull();
  });
});
