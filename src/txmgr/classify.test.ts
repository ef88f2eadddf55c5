import { describe, expect, test } from 'bun:test';
import { AbiCoder, id, makeError } from 'ethers';
import { RpcError } from '../chain/rpc-error.ts';
import { classifyRpcError } from './classify.ts';
import { decodeRevertData, decodeRevertError } from './decode.ts';
import { planResync } from './nonce-lane.ts';
import type { LaneTx } from '../store/records.ts';

const rpc = (message: string, code = -32000, data?: unknown) =>
  new RpcError('rpc', 'eth_sendRawTransaction', message, { rpcCode: code, data, endpoint: '#0' });
const rpcAnswer = (method: string, code: number, message: string, data: unknown) =>
  new RpcError('rpc', method, message, { rpcCode: code, data, endpoint: '#0' });
const noAnswer = (kind: 'timeout' | 'transport' | 'http', message: string, httpStatus?: number) =>
  new RpcError(kind, 'eth_call', message, { endpoint: '#0', ...(httpStatus === undefined ? {} : { httpStatus }) });

describe('classifyRpcError', () => {
  test.each([
    ['nonce too low', 'nonce_too_low'],
    ['nonce too low: next nonce 5, tx nonce 3', 'nonce_too_low'],
    ['OldNonce', 'nonce_too_low'],
    ['already known', 'already_known'],
    ['transaction already imported', 'already_known'],
    ['AlreadyKnown', 'already_known'],
    ['replacement transaction underpriced', 'replacement_underpriced'],
    ['Insufficient funds for gas * price + value', 'insufficient_funds'],
    ['insufficient funds for gas * price + value: balance 0, tx cost 21000', 'insufficient_funds'],
    ['transaction underpriced', 'fee_too_low'],
    ['max fee per gas less than block base fee', 'fee_too_low'],
    ['intrinsic gas too low', 'rejected'],
    ['exceeds block gas limit', 'rejected'],
  ])('%s → %s', (msg, cls) => {
    expect(classifyRpcError(rpc(msg)).cls).toBe(cls as never);
  });

  test('reverts, transport, timeouts, rate limits', () => {
    expect(classifyRpcError(rpcAnswer('eth_call', 3, 'execution reverted', '0x')).cls).toBe('reverted');
    expect(classifyRpcError(noAnswer('timeout', 'x timed out')).cls).toBe('timeout');
    expect(classifyRpcError(noAnswer('transport', 'ECONNREFUSED')).cls).toBe('transport');
    expect(classifyRpcError(noAnswer('http', 'HTTP 429', 429)).cls).toBe('rate_limited');
    expect(classifyRpcError(rpc('too many requests', -32005)).cls).toBe('rate_limited');
    expect(classifyRpcError(new Error('fetch failed')).cls).toBe('transport');
  });

  test('ethers v6 error codes', () => {
    expect(classifyRpcError(makeError('nonce has already been used', 'NONCE_EXPIRED')).cls).toBe('nonce_too_low');
    expect(classifyRpcError(makeError('replacement fee too low', 'REPLACEMENT_UNDERPRICED')).cls).toBe(
      'replacement_underpriced',
    );
    expect(classifyRpcError(makeError('insufficient funds', 'INSUFFICIENT_FUNDS')).cls).toBe('insufficient_funds');
    expect(classifyRpcError(makeError('timeout', 'TIMEOUT')).cls).toBe('timeout');
  });

  test('retryable: permanent refusals and reverts are not retried', () => {
    expect(classifyRpcError(rpc('intrinsic gas too low')).retryable).toBe(false);
    expect(classifyRpcError(rpcAnswer('eth_call', 3, 'execution reverted', '0x')).retryable).toBe(false);
    expect(classifyRpcError(rpc('nonce too low')).retryable).toBe(true);
    expect(classifyRpcError(noAnswer('timeout', 't')).retryable).toBe(true);
  });
});

describe('decode', () => {
  const coder = AbiCoder.defaultAbiCoder();
  test('custom errors of our ABIs', () => {
    const data = id('NotClaimable(uint256,uint8)').slice(0, 10) + coder.encode(['uint256', 'uint8'], [42n, 2]).slice(2);
    expect(decodeRevertData(data)).toMatchObject({ name: 'NotClaimable', args: ['42', '2'] });
    const err = rpcAnswer('eth_call', 3, 'execution reverted', data);
    expect(decodeRevertError(err).name).toBe('NotClaimable');
  });
  test('Error(string), Panic, unknown, empty', () => {
    const e = `0x08c379a0${coder.encode(['string'], ['nope']).slice(2)}`;
    expect(decodeRevertData(e)).toMatchObject({ name: 'Error', args: ['nope'], message: 'reverted: nope' });
    const p = `0x4e487b71${coder.encode(['uint256'], [0x11]).slice(2)}`;
    expect(decodeRevertData(p).message).toContain('overflow');
    expect(decodeRevertData('0xdeadbeef').name).toBe('unknown');
    expect(decodeRevertData('0x').name).toBe('unknown');
    expect(decodeRevertError(rpcAnswer('eth_call', 3, 'execution reverted', { data: e })).args).toEqual(['nope']);
  });
});

describe('planResync', () => {
  const rec = (nonce: number, state: LaneTx['state']): LaneTx => ({
    nonce,
    kind: 'claim',
    activity_ids: ['1'],
    to: `0x${'11'.repeat(20)}`,
    data: '0x',
    value: '0',
    gas_limit: '21000',
    max_fee_per_gas: '1',
    max_priority_fee_per_gas: '1',
    hashes: ['0xaa'],
    attempts: 1,
    state,
    created_at_ms: 0,
    updated_at_ms: 0,
  });
  test('resolves passed nonces, re-sends ahead ones, fills gaps, never reuses', () => {
    const p = planResync({
      latest: 3,
      pending: 4,
      nonceLast: 7,
      records: [rec(1, 'confirmed'), rec(2, 'sent'), rec(3, 'sent'), rec(5, 'reserved'), rec(7, 'failed')],
    });
    expect(p.resolve.map((r) => r.nonce)).toEqual([2]);
    expect(p.resend.map((r) => r.nonce)).toEqual([3, 5]);
    expect(p.fillNoop).toEqual([4, 6, 7]);
    expect(p.foreign).toEqual([]);
    expect(p.nextNonce).toBe(8);
  });
  test("an open delegation's authorization nonce is never a gap; once the chain passed it, its counts decide", () => {
    const auth = { chain_id: '1', address: `0x${'22'.repeat(20)}`, nonce: 6, y_parity: 0 as const, r: '0x1', s: '0x1' };
    const delegation = { ...rec(5, 'sent'), kind: 'delegate' as const, authorization_list: [auth] };
    // nonce:last says 7 (a record written after a restart would be), 6 has no record: the authorization's.
    const open = planResync({ latest: 5, pending: 5, nonceLast: 7, records: [delegation, rec(7, 'reserved')] });
    expect(open.fillNoop).toEqual([]);
    expect(open.resend.map((r) => r.nonce)).toEqual([5, 7]);
    // Mined with the authorization skipped (the chain is at 6): 6 is a gap like any other.
    const passed = planResync({ latest: 6, pending: 6, nonceLast: 7, records: [delegation, rec(7, 'reserved')] });
    expect(passed.fillNoop).toEqual([6]);
  });
  test('a wiped store follows the chain; unknown pool txs are left alone', () => {
    const p = planResync({ latest: 10, pending: 12, nonceLast: -1, records: [] });
    expect(p.nextNonce).toBe(12);
    expect(p.foreign).toEqual([10, 11]);
    expect(p.fillNoop).toEqual([]);
  });
});
