/**
 * wcp's client of the subnet-api's storage surface (`wcp.storage.v1.StorageBroker`, proto/storage/v1/storage.proto).
 *
 * wcp never holds storage credentials: it asks the subnet-api for a presigned URL scoped to one activity, one
 * object key and one HTTP method, and hands that URL to the executor. The subnet-api's answer is untrusted: every
 * field is checked before it leaves this module. A presigned URL is a credential, so logs only ever show it
 * without its query string (`redactUrl`).
 */
import {
  type ChannelCredentials,
  type Client,
  type GrpcObject,
  type ServiceClientConstructor,
  type ServiceError,
  credentials,
  status,
} from '@grpc/grpc-js';
import { WcpError } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import { loadProtoText } from '../internal/proto.ts';
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

/**
 * Loads storage.proto (from its text, so it works in the compiled binary) and returns the `StorageBroker`
 * client constructor; `.service` is the definition a server passes to `addService`.
 */
export function loadStorageBrokerService(): ServiceClientConstructor {
  const root = loadProtoText(storageProtoText as string);
  const pkg = ((root.wcp as GrpcObject).storage as GrpcObject).v1 as GrpcObject;
  return pkg.StorageBroker as ServiceClientConstructor;
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

export interface PresignParams {
  activityId: string;
  /** Object key relative to the activity, e.g. `outputs/video.mp4`. */
  key: string;
  method: PresignMethod;
  /** For PUT: the Content-Type the upload will carry. */
  contentType?: string;
  /** Requested lifetime in seconds (default 300); the server may grant less, never more. */
  ttlSeconds?: number;
  /** Cancels the call (rejects with STORAGE_UNAVAILABLE, retryable). */
  signal?: AbortSignal;
}

export interface StorageBroker {
  /**
   * Asks the subnet-api for a presigned URL. Rejects with `WcpError`:
   * - `STORAGE_UNAVAILABLE` (retryable): endpoint down, deadline exceeded, server overloaded or failing, cancelled;
   * - `STORAGE_DENIED` (not retryable): invalid parameters (checked locally first), or the subnet-api refused;
   * - `STORAGE_BAD_RESPONSE` (not retryable): the answer failed validation (bad URL, expired, wrong method …).
   */
  presign(params: PresignParams): Promise<PresignedUrl>;
  /** Closes the channel; later `presign` calls reject with STORAGE_UNAVAILABLE (not retryable). Idempotent. */
  close(): void;
}

export interface StorageBrokerOptions {
  /** gRPC target of the subnet-api, e.g. `127.0.0.1:50051` or `dns:///subnet-api.example:443`. */
  endpoint: string;
  /** This worker's on-chain address, sent with every request. */
  workerAddress: string;
  logger: Logger;
  /** Deadline of each Presign call in ms (default 5000). */
  timeoutMs?: number;
  /** Channel credentials (default: insecure, for loopback and dev). */
  channelCredentials?: ChannelCredentials;
  /** Clock seam (Unix ms), for expiry checks. Default `Date.now`. */
  now?: () => number;
}

const DEFAULT_TTL_S = 300;
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

/**
 * Creates the storage broker client. The channel connects lazily; a call made while the subnet-api is down
 * fails fast with STORAGE_UNAVAILABLE (no wait-for-ready), so the caller's retry policy decides.
 */
export function createStorageBroker(opts: StorageBrokerOptions): StorageBroker {
  const addrProblem = workerAddressProblem(opts.workerAddress);
  if (addrProblem)
    throw new WcpError('STORAGE_DENIED', `Invalid worker address for the storage broker: ${addrProblem}`);
  const log = opts.logger.child('storage');
  const timeoutMs = opts.timeoutMs ?? 5000;
  const now = opts.now ?? Date.now;
  const Ctor = loadStorageBrokerService();
  const client: Client = new Ctor(opts.endpoint, opts.channelCredentials ?? credentials.createInsecure());
  let closed = false;

  const call = (req: PresignRequestWire, signal: AbortSignal | undefined): Promise<PresignResponseWire> =>
    new Promise((resolve, reject) => {
      const c = (client as unknown as Record<string, (...args: unknown[]) => { cancel(): void }>).Presign!.call(
        client,
        req,
        { deadline: new Date(Date.now() + timeoutMs) },
        (err: ServiceError | null, res: PresignResponseWire) => {
          signal?.removeEventListener('abort', onAbort);
          if (err) reject(err);
          else resolve(res);
        },
      ) as { cancel(): void };
      const onAbort = (): void => c.cancel();
      signal?.addEventListener('abort', onAbort, { once: true });
    });

  return {
    async presign(p) {
      if (closed) throw new WcpError('STORAGE_UNAVAILABLE', 'Storage broker is closed', { retryable: false });
      const problem = activityIdProblem(p.activityId) ?? objectKeyProblem(p.key) ?? paramProblem(p);
      if (problem) {
        throw new WcpError('STORAGE_DENIED', `Refused to presign an invalid request: ${problem}`, {
          details: [`activity_id=${p.activityId.slice(0, 80)}`, `key=${p.key.slice(0, 200)}`],
        });
      }
      if (p.signal?.aborted) throw new WcpError('STORAGE_UNAVAILABLE', 'Presign cancelled', { retryable: true });
      const ttlSeconds = p.ttlSeconds ?? DEFAULT_TTL_S;
      const req: PresignRequestWire = {
        version: STORAGE_PROTOCOL_VERSION,
        worker_address: opts.workerAddress,
        activity_id: p.activityId,
        key: p.key,
        method: p.method === 'GET' ? 'METHOD_GET' : 'METHOD_PUT',
        content_type: p.contentType ?? '',
        ttl_seconds: ttlSeconds,
      };
      const fields = { activity_id: p.activityId, key: p.key, method: p.method };
      const started = Date.now();
      let res: PresignResponseWire;
      try {
        res = await call(req, p.signal);
      } catch (e) {
        const err = mapGrpcError(e, opts.endpoint);
        log.warn('Presign failed.', { ...fields, code: err.code, retryable: err.retryable, error: err.message });
        throw err;
      }
      const presigned = validateResponse(res, p.method, ttlSeconds, now());
      log.debug('Presigned a storage URL.', {
        ...fields,
        url: redactUrl(presigned.url),
        expires_in_ms: presigned.expiresAtMs - now(),
        duration_ms: Date.now() - started,
      });
      return presigned;
    },
    close() {
      if (closed) return;
      closed = true;
      client.close();
    },
  };
}

function paramProblem(p: PresignParams): string | null {
  if (p.method !== 'GET' && p.method !== 'PUT') return `method must be GET or PUT, got ${String(p.method)}`;
  if (p.ttlSeconds !== undefined && (!Number.isInteger(p.ttlSeconds) || p.ttlSeconds < 1 || p.ttlSeconds > 86_400)) {
    return `ttlSeconds must be an integer in 1..86400, got ${p.ttlSeconds}`;
  }
  if (p.contentType !== undefined && (p.contentType.length > 255 || /[\r\n]/.test(p.contentType))) {
    return 'contentType must be one line of at most 255 characters';
  }
  return null;
}

function mapGrpcError(e: unknown, endpoint: string): WcpError {
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
function validateResponse(
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
