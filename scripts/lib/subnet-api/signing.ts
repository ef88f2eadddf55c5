/**
 * URL signing of the dev subnet-api's blob store: HMAC-SHA256 over (method, activity id, key, expiry), so a URL
 * is valid for one method on one object of one activity until its expiry, and for nothing else.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The methods a blob URL can be signed for. */
export type BlobMethod = 'GET' | 'PUT';

/** The signed string; a version prefix so a later scheme can never collide with this one. */
function canonical(method: BlobMethod, activityId: string, key: string, expMs: number): string {
  return `wcp-blob-v1\n${method}\n${activityId}\n${key}\n${expMs}`;
}

/** Hex HMAC-SHA256 signature of one (method, activity id, key, expiry in Unix ms). */
export function signBlob(secret: string, method: BlobMethod, activityId: string, key: string, expMs: number): string {
  return createHmac('sha256', secret)
    .update(canonical(method, activityId, key, expMs))
    .digest('hex');
}

/** Constant-time check of a signature given in a URL (any malformed value is simply `false`). */
export function verifyBlobSig(
  secret: string,
  method: BlobMethod,
  activityId: string,
  key: string,
  expMs: number,
  sig: string,
): boolean {
  if (!/^[0-9a-f]{64}$/.test(sig)) return false;
  const want = Buffer.from(signBlob(secret, method, activityId, key, expMs), 'hex');
  return timingSafeEqual(want, Buffer.from(sig, 'hex'));
}

/** Path of an object below the HTTP base, every segment percent-encoded: `/blobs/{activity}/{k/e/y}`. */
export function blobUrlPath(activityId: string, key: string): string {
  return `/blobs/${encodeURIComponent(activityId)}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

/** A complete presigned URL: `{httpBase}/blobs/{activity}/{key}?method=…&exp=…&sig=…`. */
export function buildBlobUrl(
  httpBase: string,
  secret: string,
  method: BlobMethod,
  activityId: string,
  key: string,
  expMs: number,
): string {
  const sig = signBlob(secret, method, activityId, key, expMs);
  return `${httpBase}${blobUrlPath(activityId, key)}?method=${method}&exp=${expMs}&sig=${sig}`;
}
