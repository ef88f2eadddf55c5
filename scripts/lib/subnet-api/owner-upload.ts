/**
 * Uploading to a non-activity namespace (e.g. the demo's `seed` inputs) the way a workflow owner would: a Presign
 * PUT signed by the owner's own key (no activity, no delegation), then the HTTP PUT. The first signed upload to a
 * namespace makes its signer the owner; activities of workflows that address starts may then read it.
 */
import type { ChannelCredentials } from '@grpc/grpc-js';
import { createLogger } from '../../../src/internal/logger.ts';
import { createPresignSigner } from '../../../src/storage/auth.ts';
import { createStorageBroker } from '../../../src/storage/broker.ts';

export interface OwnerUpload {
  /** gRPC target of the subnet-api. */
  endpoint: string;
  /** The owner's private key (0x hex); it signs the request and nothing else. */
  ownerKey: string;
  chainId: number;
  namespace: string;
  key: string;
  bytes: Uint8Array | string;
  contentType?: string;
  channelCredentials?: ChannelCredentials;
}

/** Presigns as the owner and uploads; rejects with the server's refusal or the HTTP status. */
export async function uploadAsOwner(u: OwnerUpload): Promise<void> {
  const broker = createStorageBroker({
    endpoint: u.endpoint,
    signer: createPresignSigner({ key: u.ownerKey }),
    chainId: u.chainId,
    logger: createLogger('owner-upload', { level: 'error', write: () => {} }),
    ...(u.channelCredentials ? { channelCredentials: u.channelCredentials } : {}),
  });
  try {
    const put = await broker.presign({
      activityId: u.namespace,
      actingActivityId: '',
      key: u.key,
      method: 'PUT',
      ...(u.contentType ? { contentType: u.contentType } : {}),
    });
    const res = await fetch(put.url, { method: 'PUT', headers: put.headers, body: u.bytes });
    if (res.status !== 201) throw new Error(`upload of ${u.namespace}/${u.key} answered HTTP ${res.status}`);
  } finally {
    broker.close();
  }
}
