/**
 * The signing rules of presign requests (auth.ts): what a signer produces verifies, and each tampering, expiry or
 * impersonation is refused with its reason.
 */
import { describe, expect, test } from 'bun:test';
import { Wallet } from 'ethers';
import {
  createNonceGuard,
  createPresignSigner,
  createStorageSession,
  delegationText,
  type PresignProof,
  presignText,
  verifyPresignAuth,
} from './auth.ts';

const CHAIN = 31337;
const T0 = 1_700_000_000_000;
const worker = Wallet.createRandom();
const stranger = Wallet.createRandom();
const fields = {
  chainId: CHAIN,
  actingActivityId: '12',
  namespace: '11',
  key: 'out.bin',
  method: 'GET' as 'GET' | 'PUT',
  contentType: '',
  ttlSeconds: 300,
};
const { chainId: _c, ...unsignedFields } = fields;

function signed(walletKey = worker.privateKey, opts: { ttlMs?: number; chainId?: number } = {}) {
  const session = createStorageSession({
    walletKey,
    chainId: opts.chainId ?? CHAIN,
    ttlMs: opts.ttlMs ?? 3_600_000,
    nowMs: T0,
  });
  const signer = createPresignSigner(session);
  return { session, signer, proof: signer.sign(fields, T0) };
}

const verify = (address: string, proof: Partial<PresignProof>, nowMs = T0 + 1000, over: Partial<typeof fields> = {}) =>
  verifyPresignAuth({ address, ...unsignedFields, ...over }, proof, { chainId: CHAIN, nowMs });

describe('presign auth', () => {
  test('a session-signed request verifies as the wallet', () => {
    const { signer, proof } = signed();
    expect(signer.address).toBe(worker.address);
    expect(verify(worker.address, proof)).toMatchObject({
      ok: true,
      address: worker.address.toLowerCase(),
      via: 'session',
    });
  });

  test('the canonical texts name every field on its own line', () => {
    const { session, proof } = signed();
    expect(delegationText(session.delegation).split('\n')).toEqual([
      'wcp storage session delegation v1',
      'purpose: presign storage URLs for activities this worker holds',
      `session: ${session.delegation.sessionAddress.toLowerCase()}`,
      `wallet: ${worker.address.toLowerCase()}`,
      'chain id: 31337',
      `issued at (unix ms): ${T0}`,
      `expires at (unix ms): ${T0 + 3_600_000}`,
    ]);
    const text = presignText({
      ...fields,
      address: worker.address,
      expiresAtMs: proof.expiresAtMs,
      nonce: proof.nonce,
    });
    expect(text.split('\n')[0]).toBe('wcp storage presign request v1');
    expect(text).toContain('\nacting activity: 12\nnamespace: 11\nkey: out.bin\nmethod: GET\n');
  });

  test('a tampered field (namespace, key, method, acting activity, ttl) is refused', () => {
    const { proof } = signed();
    for (const over of [
      { namespace: '10' },
      { key: 'other.bin' },
      { method: 'PUT' as const },
      { actingActivityId: '13' },
      { ttlSeconds: 900 },
    ]) {
      expect(verify(worker.address, proof, T0 + 1000, over)).toMatchObject({ ok: false, reason: 'bad_signature' });
    }
    expect(verify(worker.address, { ...proof, nonce: 'ab'.repeat(16) })).toMatchObject({
      ok: false,
      reason: 'bad_signature',
    });
  });

  test('expired request and expired delegation are refused', () => {
    const { proof } = signed(worker.privateKey, { ttlMs: 60_000 });
    expect(verify(worker.address, proof, proof.expiresAtMs + 1)).toMatchObject({
      ok: false,
      reason: 'request_expired',
    });
    // A fresh request from a session whose delegation ended.
    const { signer } = signed(worker.privateKey, { ttlMs: 60_000 });
    const late = signer.sign(fields, T0 + 61_000);
    expect(verify(worker.address, late, T0 + 62_000)).toMatchObject({ ok: false, reason: 'delegation_expired' });
    expect(verify(worker.address, { ...proof, expiresAtMs: T0 + 3_600_000 })).toMatchObject({ ok: false });
  });

  test('wrong worker: another wallet, a forged delegation, another session key, another chain', () => {
    const { proof, session } = signed();
    // The request claims to be for a wallet the delegation is not from.
    expect(verify(stranger.address, proof)).toMatchObject({ ok: false, reason: 'delegation_wallet_mismatch' });
    // A stranger's delegation relabelled as the worker's.
    const forged = signed(stranger.privateKey);
    const relabelled = { ...forged.proof, delegation: { ...forged.session.delegation, walletAddress: worker.address } };
    expect(verify(worker.address, relabelled)).toMatchObject({ ok: false, reason: 'delegation_bad_signature' });
    // The worker's delegation with a request signed by another session key.
    const other = signed().proof;
    expect(verify(worker.address, { ...other, delegation: session.delegation })).toMatchObject({
      ok: false,
      reason: 'bad_signature',
    });
    expect(verify(worker.address, signed(worker.privateKey, { chainId: 1 }).proof)).toMatchObject({
      ok: false,
      reason: 'delegation_wrong_chain',
    });
  });

  test('direct signatures: the address itself signs; unsigned is refused', () => {
    const direct = createPresignSigner({ key: stranger.privateKey }).sign(fields, T0);
    expect(direct.delegation).toBeUndefined();
    expect(verify(stranger.address, direct)).toMatchObject({ ok: true, via: 'direct' });
    expect(verify(worker.address, direct)).toMatchObject({ ok: false, reason: 'bad_signature' });
    const { signature: _s, ...unsigned } = direct;
    expect(verify(stranger.address, unsigned)).toMatchObject({ ok: false, reason: 'unsigned' });
  });

  test('a value with a line break cannot forge another line', () => {
    const { proof } = signed();
    expect(verify(worker.address, proof, T0 + 1000, { key: 'out.bin\nmethod: PUT' })).toMatchObject({
      ok: false,
      reason: 'malformed',
    });
  });

  test('the nonce guard refuses a replay until the request expires', () => {
    const g = createNonceGuard();
    expect(g.fresh('aa'.repeat(16), T0 + 1000, T0)).toBe(true);
    expect(g.fresh('aa'.repeat(16), T0 + 1000, T0 + 500)).toBe(false);
    expect(g.fresh('bb'.repeat(16), T0 + 1000, T0)).toBe(true);
  });
});
