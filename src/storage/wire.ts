/**
 * The wire of `wcp.storage.v1.StorageBroker` (proto/storage/v1/storage.proto) as both sides see it: the message
 * shapes, the service loader, the field rules shared by client and server, and the client's checks of an
 * untrusted answer (every field of a PresignResponse is checked before a URL leaves the broker).
 */
import { type GrpcObject, type ServiceClientConstructor, type ServiceError, status } from '@grpc/grpc-js';
import { WcpError } from '../internal/errors.ts';
import { loadProtoText } from '../internal/proto.ts';
import { storageRefused, workerRefusalOfGrpc } from './refusal.ts';
import { isUnsettledRefusal } from './entitlement.ts';
import type { SessionDelegation } from './auth.ts';
import storageProtoText from '../../proto/storage/v1/storage.proto' with { type: 'text' };

/** Protocol version spoken by this build (`ProtocolVersion.PROTOCOL_VERSION_1` in storage.proto). */
export const STORAGE_PROTOCOL_VERSION = 1;

/** Fully-qualified gRPC service name, for servers registering the service. */
export const STORAGE_SERVICE_NAME = 'wcp.storage.v1.StorageBroker';

/** HTTP method a presigned URL is valid for. */
export type PresignMethod = 'GET' | 'PUT';

/** Wire shape of `PresignRequest` as proto-loader sees it (keepCase, enums as strings). */
export interface PresignRequestWire {
  version: number;
  worker_address: string;
  activity_id: string;
  key: string;
  method: 'METHOD_UNSPECIFIED' | 'METHOD_GET' | 'METHOD_PUT';
  content_type: string;
  ttl_seconds: number;
  /** The activity held and asked for; '' means `activity_id`. */
  acting_activity_id: string;
  /** uint64: a decimal string when decoded, a number when sent. */
  auth_expires_at_unix_ms: string | number;
  auth_nonce: string;
  signature: string;
  delegation: SessionDelegationWire | null;
}

/** Wire shape of `SessionDelegation`. */
export interface SessionDelegationWire {
  session_address: string;
  wallet_address: string;
  chain_id: string | number;
  issued_at_unix_ms: string | number;
  expires_at_unix_ms: string | number;
  signature: string;
}

/** Wire shape of `PresignResponse` as proto-loader sees it (uint64 as decimal strings when decoded). */
export interface PresignResponseWire {
  version: number;
  url: string;
  method: 'METHOD_UNSPECIFIED' | 'METHOD_GET' | 'METHOD_PUT';
  expires_at_unix_ms: string | number;
  headers: Record<string, string>;
  max_bytes: string | number;
}

/** The parsed service, once per thread (an immutable constructor: a cache, as in taskstream/protocol.ts). */
let storageBrokerService: ServiceClientConstructor | undefined;

/**
 * Loads storage.proto (from its text, so it works in the compiled binary; parsed once per thread) and returns the
 * `StorageBroker` client constructor; `.service` is the definition a server passes to `addService`.
 */
export function loadStorageBrokerService(): ServiceClientConstructor {
  if (storageBrokerService === undefined) {
    const root = loadProtoText(storageProtoText as string);
    const pkg = ((root.wcp as GrpcObject).storage as GrpcObject).v1 as GrpcObject;
    storageBrokerService = pkg.StorageBroker as ServiceClientConstructor;
  }
  return storageBrokerService;
}

/** Object keys: '/'-separated segments of [A-Za-z0-9._-], no '.'/'..'/empty segments, at most 512 chars. */
const KEY_SEGMENT = /^[A-Za-z0-9._-]+$/;
/** Activity ids: one path-safe token (decimal uint256, 0x-hex bytes32, a UUID …), at most 128 chars. */
const ACTIVITY_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;
const WORKER_ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/** Why `key` is not a valid object key, or `null` when it is. Shared by the client and the dev subnet-api. */
export function objectKeyProblem(key: string): string | null {
  if (key.length === 0) return 'key is empty';
  if (key.length > 512) return 'key is longer than 512 characters';
  if (key.startsWith('/')) return 'key must be relative (no leading "/")';
  for (const seg of key.split('/')) {
    if (seg === '') return 'key has an empty path segment';
    if (seg === '.' || seg === '..') return 'key has a "." or ".." segment';
    if (!KEY_SEGMENT.test(seg)) return `key segment "${seg.slice(0, 40)}" has characters outside [A-Za-z0-9._-]`;
  }
  return null;
}

/** Why `id` is not a valid activity id, or `null` when it is. Shared by the client and the dev subnet-api. */
export function activityIdProblem(id: string): string | null {
  if (!ACTIVITY_ID.test(id) || id === '.' || id === '..') {
    return 'activity id must be 1-128 characters of [A-Za-z0-9._-], not starting with "."';
  }
  return null;
}

/** Why `address` is not a 0x-prefixed 20-byte hex address, or `null`. */
export function workerAddressProblem(address: string): string | null {
  return WORKER_ADDRESS.test(address) ? null : 'worker address must be 0x followed by 40 hex digits';
}

/** A URL without its query string and fragment (which carry the signature), for logs and error messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? '?[redacted]' : ''}`;
  } catch {
    return '[unparseable url]';
  }
}

/** A validated presigned URL. `url` is a credential: log `redactUrl(url)`, never `url`. */
export interface PresignedUrl {
  url: string;
  method: PresignMethod;
  /** Expiry, Unix ms (server clock); checked to be in the future when received. */
  expiresAtMs: number;
  /** Headers to send with the HTTP request (lower-case names). */
  headers: Record<string, string>;
  /** For PUT: largest body the store accepts, in bytes; `undefined` when the server did not say. */
  maxBytes: number | undefined;
}

/** Allowance for clock skew between the subnet-api and this host when checking an expiry's upper bound. */
const CLOCK_SKEW_MS = 5 * 60_000;
const MAX_URL_LENGTH = 8192;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers the HTTP client manages itself; a server asking us to set them is not trusted. */
const FORBIDDEN_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'upgrade',
  'te',
  'trailer',
  'keep-alive',
  'proxy-authorization',
  'cookie',
]);

/** gRPC status codes after which the same request may succeed later. */
const RETRYABLE_STATUS = new Set<number>([
  status.UNAVAILABLE,
  status.DEADLINE_EXCEEDED,
  status.RESOURCE_EXHAUSTED,
  status.ABORTED,
  status.INTERNAL,
  status.UNKNOWN,
  status.CANCELLED,
]);

export function paramProblem(p: {
  method: string;
  ttlSeconds?: number | undefined;
  contentType?: string | undefined;
}): string | null {
  if (p.method !== 'GET' && p.method !== 'PUT') return `method must be GET or PUT, got ${String(p.method)}`;
  if (p.ttlSeconds !== undefined && (!Number.isInteger(p.ttlSeconds) || p.ttlSeconds < 1 || p.ttlSeconds > 86_400)) {
    return `ttlSeconds must be an integer in 1..86400, got ${p.ttlSeconds}`;
  }
  if (p.contentType !== undefined && (p.contentType.length > 255 || /[\r\n]/.test(p.contentType))) {
    return 'contentType must be one line of at most 255 characters';
  }
  return null;
}

/**
 * Whether a failed call is the service's refusal resting on an activity the chain does not know (PERMISSION_DENIED
 * "… does not exist on chain …": the service reads the chain itself, maybe mid-reorg). The broker retries such a
 * refusal as STORAGE_CHAIN_UNSETTLED within the same bound as its own check's.
 */
export function isUnsettledDenial(e: unknown): boolean {
  const se = e as Partial<ServiceError>;
  return se.code === status.PERMISSION_DENIED && isUnsettledRefusal(String(se.details ?? ''));
}

/**
 * A failed call as a WcpError: STORAGE_UNAVAILABLE (retryable statuses), STORAGE_REFUSED (about the worker, see
 * refusal.ts) or STORAGE_DENIED (about the request's data).
 */
export function mapGrpcError(e: unknown, endpoint: string): WcpError {
  const se = e as Partial<ServiceError>;
  const code = typeof se.code === 'number' ? se.code : status.UNKNOWN;
  // The server's text is untrusted: keep it short and on one line.
  const detail = String(se.details ?? (e instanceof Error ? e.message : e))
    .replace(/\s+/g, ' ')
    .slice(0, 300);
  const name = status[code] ?? String(code);
  if (RETRYABLE_STATUS.has(code)) {
    const what =
      code === status.DEADLINE_EXCEEDED
        ? 'did not answer in time'
        : code === status.CANCELLED
          ? 'call was cancelled'
          : 'is unavailable';
    return new WcpError('STORAGE_UNAVAILABLE', `Subnet-api storage broker at ${endpoint} ${what}`, {
      retryable: true,
      details: [`grpc status ${name}: ${detail}`],
      cause: e,
    });
  }
  const refusal = workerRefusalOfGrpc(code, detail);
  if (refusal !== null) {
    return storageRefused(
      refusal,
      `Subnet-api storage broker at ${endpoint} refuses this worker (${name})`,
      [`grpc status ${name}: ${detail}`],
      e,
    );
  }
  return new WcpError('STORAGE_DENIED', `Subnet-api storage broker refused the request (${name})`, {
    retryable: false,
    details: [detail],
    cause: e,
  });
}

function bad(message: string, details: string[] = []): WcpError {
  return new WcpError('STORAGE_BAD_RESPONSE', `Subnet-api storage broker sent an unusable answer: ${message}`, {
    retryable: false,
    details,
  });
}

/** Checks an untrusted PresignResponse; returns the validated URL or throws STORAGE_BAD_RESPONSE. */
export function validateResponse(
  res: PresignResponseWire,
  method: PresignMethod,
  ttlSeconds: number,
  nowMs: number,
): PresignedUrl {
  if (res === null || typeof res !== 'object') throw bad('empty response');
  if (res.version !== STORAGE_PROTOCOL_VERSION) {
    throw bad(`protocol version ${String(res.version)}, this build speaks ${STORAGE_PROTOCOL_VERSION}`);
  }
  const wantMethod = method === 'GET' ? 'METHOD_GET' : 'METHOD_PUT';
  if (res.method !== wantMethod) throw bad(`URL is for ${String(res.method)}, asked for ${wantMethod}`);

  if (typeof res.url !== 'string' || res.url.length === 0) throw bad('no url');
  if (res.url.length > MAX_URL_LENGTH) throw bad(`url longer than ${MAX_URL_LENGTH} characters`);
  let u: URL;
  try {
    u = new URL(res.url);
  } catch {
    throw bad('url does not parse');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw bad(`url scheme ${u.protocol} is not http(s)`);
  if (u.username || u.password) throw bad('url carries user credentials', [redactUrl(res.url)]);

  const expiresAtMs = Number(res.expires_at_unix_ms);
  if (!Number.isSafeInteger(expiresAtMs) || expiresAtMs <= 0) throw bad('missing or invalid expires_at_unix_ms');
  if (expiresAtMs <= nowMs) {
    throw bad(`url already expired (${new Date(expiresAtMs).toISOString()}); check both clocks`, [redactUrl(res.url)]);
  }
  if (expiresAtMs > nowMs + ttlSeconds * 1000 + CLOCK_SKEW_MS) {
    throw bad(`url lives longer than the ${ttlSeconds} s asked for (expires ${new Date(expiresAtMs).toISOString()})`);
  }

  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers ?? {})) {
    const name = k.toLowerCase();
    if (!HEADER_NAME.test(name) || FORBIDDEN_HEADERS.has(name)) throw bad(`header "${k.slice(0, 60)}" is not allowed`);
    if (typeof v !== 'string' || v.length > 1024 || /[\r\n\0]/.test(v))
      throw bad(`header "${name}" has an invalid value`);
    headers[name] = v;
  }

  const maxRaw = Number(res.max_bytes ?? 0);
  if (!Number.isSafeInteger(maxRaw) || maxRaw < 0) throw bad('invalid max_bytes');
  return { url: res.url, method, expiresAtMs, headers, maxBytes: maxRaw > 0 ? maxRaw : undefined };
}

/** A delegation as sent on the wire. */
export function delegationToWire(d: SessionDelegation): SessionDelegationWire {
  return {
    session_address: d.sessionAddress,
    wallet_address: d.walletAddress,
    chain_id: d.chainId,
    issued_at_unix_ms: d.issuedAtMs,
    expires_at_unix_ms: d.expiresAtMs,
    signature: d.signature,
  };
}

/** A received delegation (numbers decoded; the verifier checks them). */
export function delegationFromWire(w: SessionDelegationWire): SessionDelegation {
  return {
    sessionAddress: String(w.session_address ?? ''),
    walletAddress: String(w.wallet_address ?? ''),
    chainId: Number(w.chain_id ?? 0),
    issuedAtMs: Number(w.issued_at_unix_ms ?? 0),
    expiresAtMs: Number(w.expires_at_unix_ms ?? 0),
    signature: String(w.signature ?? ''),
  };
}
