/**
 * How a presign request proves who sends it — the one definition shared by wcp's broker (signing) and the
 * subnet-api (verifying; the dev one in scripts/lib/subnet-api is the reference).
 *
 * Two signatures, both EIP-191 `personal_sign` over a canonical text (lines `label: value`, first line names the
 * scheme and its version, so no text of one kind can be replayed as the other):
 * - the **delegation**: at start the supervisor (the only thread holding the wallet key) makes an ephemeral
 *   session key and the wallet signs `delegationText` (purpose, session address, wallet, chain id, issue and
 *   expiry times). It lives for `subnet_api.session_ttl` and is renewed by restarting wcp;
 * - the **request**: the storage broker (executor thread) signs `presignText` (signer address, chain id, acting
 *   activity, namespace, key, method, content type, ttl, request expiry, nonce) with the session key.
 * Without a delegation the request must be signed by `worker_address` itself (an owner seeding a namespace).
 * Every value is checked to be one line before it is put in a text, so no field can forge another line.
 */
import { randomBytes } from 'node:crypto';
import { getAddress, verifyMessage, Wallet } from 'ethers';

/** First line of the delegation text; a new scheme gets a new version. */
export const DELEGATION_SCHEME = 'wcp storage session delegation v1';
/** What a delegation allows, spelled out in the text the wallet signs. */
export const DELEGATION_PURPOSE = 'presign storage URLs for activities this worker holds';
/** First line of the presign request text. */
export const PRESIGN_SCHEME = 'wcp storage presign request v1';

/** Lifetime of one request signature (a request is signed right before it is sent). */
export const REQUEST_AUTH_TTL_MS = 2 * 60_000;
/** Allowance for clock skew between the signer and the verifier. */
export const AUTH_CLOCK_SKEW_MS = 2 * 60_000;
/** Longest delegation a verifier accepts by default (31 days). */
export const MAX_DELEGATION_TTL_MS = 31 * 24 * 3_600_000;

/** A wallet's signed delegation to a session key (wire: `SessionDelegation`). Times are Unix ms. */
export interface SessionDelegation {
  sessionAddress: string;
  walletAddress: string;
  chainId: number;
  issuedAtMs: number;
  expiresAtMs: number;
  /** EIP-191 signature of `delegationText` by the wallet. */
  signature: string;
}

/** The signed fields of one presign request (the wire's PresignRequest, minus version and signature). */
export interface PresignAuthFields {
  /** The worker (or owner) the request is made for: `worker_address`. */
  address: string;
  chainId: number;
  /** The activity held by `address` and asked on behalf of; '' for an owner's direct request. */
  actingActivityId: string;
  /** `activity_id` on the wire: the namespace the object lives in. */
  namespace: string;
  key: string;
  method: 'GET' | 'PUT';
  contentType: string;
  ttlSeconds: number;
  expiresAtMs: number;
  nonce: string;
}

/** One request's proof: what goes into the new PresignRequest fields. */
export interface PresignProof {
  expiresAtMs: number;
  nonce: string;
  signature: string;
  /** Absent when the request is signed by `address` directly. */
  delegation?: SessionDelegation;
}

/** Why authentication failed, as a stable reason code (the verifier answers UNAUTHENTICATED with it). */
export type AuthFailure =
  | 'unsigned'
  | 'bad_signature'
  | 'request_expired'
  | 'request_too_long'
  | 'delegation_wallet_mismatch'
  | 'delegation_wrong_chain'
  | 'delegation_expired'
  | 'delegation_not_yet_valid'
  | 'delegation_too_long'
  | 'delegation_bad_signature'
  | 'malformed';

const NONCE = /^[0-9a-f]{16,64}$/;
const SIGNATURE = /^0x[0-9a-fA-F]{130}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

function line(label: string, value: string | number): string {
  const text = String(value);
  if (/[\r\n]/.test(text)) throw new Error(`${label} must be one line`);
  return `${label}: ${text}`;
}

/** The exact text a wallet signs to delegate presigning to a session key. */
export function delegationText(d: Omit<SessionDelegation, 'signature'>): string {
  return [
    DELEGATION_SCHEME,
    line('purpose', DELEGATION_PURPOSE),
    line('session', d.sessionAddress.toLowerCase()),
    line('wallet', d.walletAddress.toLowerCase()),
    line('chain id', d.chainId),
    line('issued at (unix ms)', d.issuedAtMs),
    line('expires at (unix ms)', d.expiresAtMs),
  ].join('\n');
}

/** The exact text signed for one presign request. */
export function presignText(f: PresignAuthFields): string {
  return [
    PRESIGN_SCHEME,
    line('address', f.address.toLowerCase()),
    line('chain id', f.chainId),
    line('acting activity', f.actingActivityId),
    line('namespace', f.namespace),
    line('key', f.key),
    line('method', f.method),
    line('content type', f.contentType),
    line('ttl seconds', f.ttlSeconds),
    line('expires at (unix ms)', f.expiresAtMs),
    line('nonce', f.nonce),
  ].join('\n');
}

/** A session: its private key (stays in memory, crosses to the executor thread) and the wallet's delegation. */
export interface StorageSession {
  sessionKey: string;
  delegation: SessionDelegation;
}

/**
 * A wallet with a fresh random key. Not ethers' `Wallet.createRandom()`: that makes a mnemonic and derives an HD
 * path from it (~25 ms at start-up, on the way to the first claim), none of which a session key needs.
 */
function randomWallet(): Wallet {
  for (;;) {
    try {
      return new Wallet(`0x${randomBytes(32).toString('hex')}`);
    } catch {
      // zero or not below the curve order (chance 2^-128): draw again
    }
  }
}

/**
 * Makes an ephemeral session key and has `walletKey` sign its delegation, valid `ttlMs` from `nowMs`. Runs
 * where the wallet key is (the supervisor thread); only the session key and the delegation leave it.
 */
export function createStorageSession(o: {
  walletKey: string;
  chainId: number;
  ttlMs: number;
  nowMs?: number;
}): StorageSession {
  const wallet = new Wallet(o.walletKey);
  const session = randomWallet();
  const issuedAtMs = o.nowMs ?? Date.now();
  const unsigned = {
    sessionAddress: session.address,
    walletAddress: wallet.address,
    chainId: o.chainId,
    issuedAtMs,
    expiresAtMs: issuedAtMs + o.ttlMs,
  };
  return {
    sessionKey: session.privateKey,
    delegation: { ...unsigned, signature: wallet.signMessageSync(delegationText(unsigned)) },
  };
}

/** Signs requests: with a session (key + delegation), or directly with an address's own key (`delegation` unset). */
export interface PresignSigner {
  /** The address requests are made for (the wallet of the delegation, or the key's own address). */
  address: string;
  /** The delegation, when signing with a session. */
  delegation: SessionDelegation | undefined;
  sign(f: Omit<PresignAuthFields, 'address' | 'expiresAtMs' | 'nonce'>, nowMs?: number): PresignProof;
}

/** A signer for a session, or for a key that signs for itself (`{ key }`). */
export function createPresignSigner(s: StorageSession | { key: string }): PresignSigner {
  const key = 'sessionKey' in s ? s.sessionKey : s.key;
  const signer = new Wallet(key);
  const delegation = 'delegation' in s ? s.delegation : undefined;
  const address = delegation ? getAddress(delegation.walletAddress) : signer.address;
  return {
    address,
    delegation,
    sign(f, nowMs = Date.now()) {
      const expiresAtMs = nowMs + REQUEST_AUTH_TTL_MS;
      const nonce = randomBytes(16).toString('hex');
      const signature = signer.signMessageSync(presignText({ ...f, address, expiresAtMs, nonce }));
      return { expiresAtMs, nonce, signature, ...(delegation ? { delegation } : {}) };
    },
  };
}

/** What a verifier knows: its chain, its clock and its limits. */
export interface VerifyContext {
  chainId: number;
  nowMs: number;
  /** Longest delegation accepted (default MAX_DELEGATION_TTL_MS). */
  maxDelegationTtlMs?: number;
}

export type AuthVerdict =
  | { ok: true; address: string; via: 'session' | 'direct'; sessionAddress?: string }
  | { ok: false; reason: AuthFailure; message: string };

function recover(text: string, signature: string): string | null {
  if (!SIGNATURE.test(signature)) return null;
  try {
    return verifyMessage(text, signature).toLowerCase();
  } catch {
    return null;
  }
}

/**
 * Checks one request's proof: the request signature (by the delegated session key, or by `address` itself),
 * the request's expiry, and the delegation (signed by `address`, for this chain, live, not too long). Says who
 * the request is for; whether that address may touch the object is the caller's next check.
 */
export function verifyPresignAuth(
  f: Omit<PresignAuthFields, 'chainId' | 'expiresAtMs' | 'nonce'>,
  proof: Partial<PresignProof>,
  ctx: VerifyContext,
): AuthVerdict {
  const no = (reason: AuthFailure, message: string): AuthVerdict => ({ ok: false, reason, message });
  if (!proof.signature) return no('unsigned', 'request is not signed');
  if (!ADDRESS.test(f.address)) return no('malformed', 'worker address is not an address');
  const exp = Number(proof.expiresAtMs ?? 0);
  if (!proof.nonce || !NONCE.test(proof.nonce))
    return no('malformed', 'auth nonce must be 16-64 lower-case hex digits');
  if (!Number.isSafeInteger(exp) || exp <= ctx.nowMs) return no('request_expired', 'request signature expired');
  if (exp > ctx.nowMs + REQUEST_AUTH_TTL_MS + AUTH_CLOCK_SKEW_MS)
    return no('request_too_long', 'request signature lives too long; check the clocks');
  let text: string;
  try {
    text = presignText({ ...f, chainId: ctx.chainId, expiresAtMs: exp, nonce: proof.nonce });
  } catch (e) {
    return no('malformed', e instanceof Error ? e.message : String(e));
  }
  const signer = recover(text, proof.signature);
  if (signer === null) return no('bad_signature', 'request signature does not parse');
  const address = f.address.toLowerCase();
  const d = proof.delegation;
  if (!d) {
    return signer === address
      ? { ok: true, address, via: 'direct' }
      : no('bad_signature', 'request is not signed by the worker address (and carries no delegation)');
  }
  if (d.walletAddress.toLowerCase() !== address)
    return no('delegation_wallet_mismatch', 'delegation is from another wallet than worker_address');
  if (Number(d.chainId) !== ctx.chainId)
    return no('delegation_wrong_chain', `delegation is not for chain ${ctx.chainId}`);
  const issued = Number(d.issuedAtMs);
  const expires = Number(d.expiresAtMs);
  if (!Number.isSafeInteger(issued) || !Number.isSafeInteger(expires)) return no('malformed', 'delegation times');
  if (expires <= ctx.nowMs) return no('delegation_expired', 'session delegation expired; restart wcp to renew it');
  if (issued > ctx.nowMs + AUTH_CLOCK_SKEW_MS) return no('delegation_not_yet_valid', 'delegation issued in the future');
  if (expires - issued > (ctx.maxDelegationTtlMs ?? MAX_DELEGATION_TTL_MS))
    return no('delegation_too_long', 'delegation lives longer than this server accepts');
  let dText: string;
  try {
    dText = delegationText(d);
  } catch (e) {
    return no('malformed', e instanceof Error ? e.message : String(e));
  }
  if (!ADDRESS.test(d.sessionAddress)) return no('malformed', 'delegation session address');
  if (recover(dText, d.signature) !== address)
    return no('delegation_bad_signature', 'delegation is not signed by the worker wallet');
  if (signer !== d.sessionAddress.toLowerCase())
    return no('bad_signature', 'request is not signed by the delegated session key');
  return { ok: true, address, via: 'session', sessionAddress: signer };
}

/** Remembers nonces until their request expires, so a captured request cannot be replayed. */
export interface NonceGuard {
  /** False when `nonce` was seen (and not yet expired); records it otherwise. */
  fresh(nonce: string, expiresAtMs: number, nowMs: number): boolean;
}

/** A nonce guard in memory (the dev subnet-api's; a production service shares one across its replicas). */
export function createNonceGuard(): NonceGuard {
  const seen = new Map<string, number>();
  return {
    fresh(nonce, expiresAtMs, nowMs) {
      if (seen.size > 10_000) for (const [n, exp] of seen) if (exp <= nowMs) seen.delete(n);
      if (seen.has(nonce)) return false;
      seen.set(nonce, expiresAtMs);
      return true;
    },
  };
}
