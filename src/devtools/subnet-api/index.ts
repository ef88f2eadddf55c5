/**
 * The project's DEV subnet-api, for `npm run dev` and tests: a real grpc-js server implementing
 * `wcp.storage.v1.StorageBroker`, plus a real node:http server serving a blob store on disk through URLs it
 * signs (HMAC-SHA256 over method, activity id, key and expiry). Not for production: one process, one secret,
 * no TLS, no worker authentication beyond the optional `authorize` hook.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server as GrpcServer, ServerCredentials } from '@grpc/grpc-js';
import { createLogger, type Logger } from '../../internal/logger.ts';
import { loadStorageBrokerService } from '../../storage/broker.ts';
import { createBlobStore } from './blob-store.ts';
import { createBrokerService, type PresignAuthRequest } from './grpc.ts';
import { createBlobHandler } from './http.ts';

export type { PresignAuthRequest } from './grpc.ts';
export { buildBlobUrl, signBlob } from './signing.ts';

export interface DevSubnetApiOptions {
  /** Where blobs live (`{dataDir}/blobs/{activity_id}/{key}`) and temp uploads go (`{dataDir}/tmp`). */
  dataDir: string;
  /** gRPC port (default: a free one). */
  grpcPort?: number;
  /** HTTP port of the blob store (default: a free one). */
  httpPort?: number;
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** HMAC secret for URLs (default: 32 random bytes, new on every start). */
  secret?: string;
  /** Largest TTL granted, seconds (default 900); requests asking more get this. */
  maxTtlS?: number;
  /** TTL when a request asks for 0, seconds (default 300, capped at maxTtlS). */
  defaultTtlS?: number;
  /** Largest PUT body, bytes (default 1 GiB). */
  maxPutBytes?: number;
  /** Clock seam, Unix ms (default Date.now): tests move it to expire URLs without sleeping. */
  now?: () => number;
  /** Plays the subnet-api's assignment check; false → PERMISSION_DENIED (default: allow all). */
  authorize?: (req: PresignAuthRequest) => boolean;
  logger?: Logger;
}

export interface DevSubnetApi {
  /** gRPC target for `createStorageBroker({ endpoint })`, e.g. `127.0.0.1:40123`. */
  grpcEndpoint: string;
  /** Base of blob URLs, e.g. `http://127.0.0.1:40124`. */
  httpBase: string;
  /** Absolute path of one object on disk (throws on an invalid activity id or key). */
  blobPath(activityId: string, key: string): string;
  /** Seeds an object directly (atomically), e.g. an input video. Returns its path. */
  putBlob(activityId: string, key: string, bytes: Uint8Array | string): Promise<string>;
  /** Stops both servers (open HTTP connections are closed). Idempotent. */
  stop(): Promise<void>;
}

/** Starts the dev subnet-api on loopback and resolves once both servers listen. */
export async function startDevSubnetApi(opts: DevSubnetApiOptions): Promise<DevSubnetApi> {
  const host = opts.host ?? '127.0.0.1';
  const logger = opts.logger ?? createLogger('dev-subnet-api');
  const secret = opts.secret ?? randomBytes(32).toString('hex');
  const now = opts.now ?? Date.now;
  const maxTtlS = opts.maxTtlS ?? 900;
  const maxPutBytes = opts.maxPutBytes ?? 1024 ** 3;
  const store = createBlobStore(opts.dataDir);
  const urlHost = host.includes(':') ? `[${host}]` : host;

  const http: HttpServer = createServer(
    createBlobHandler({ store, secret, maxPutBytes, now, logger: logger.child('http') }),
  );
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(opts.httpPort ?? 0, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const httpBase = `http://${urlHost}:${(http.address() as AddressInfo).port}`;

  const grpc = new GrpcServer();
  grpc.addService(
    loadStorageBrokerService().service,
    createBrokerService({
      httpBase: () => httpBase,
      secret,
      defaultTtlS: Math.min(opts.defaultTtlS ?? 300, maxTtlS),
      maxTtlS,
      maxPutBytes,
      now,
      authorize: opts.authorize ?? (() => true),
      logger: logger.child('grpc'),
    }),
  );
  let grpcPort: number;
  try {
    grpcPort = await new Promise<number>((resolve, reject) => {
      grpc.bindAsync(`${urlHost}:${opts.grpcPort ?? 0}`, ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      );
    });
  } catch (e) {
    http.close();
    throw e;
  }
  const grpcEndpoint = `${urlHost}:${grpcPort}`;
  logger.info('Dev subnet-api listening.', { grpc: grpcEndpoint, http: httpBase, data_dir: opts.dataDir });

  let stopped: Promise<void> | undefined;
  return {
    grpcEndpoint,
    httpBase,
    blobPath: store.blobPath,
    putBlob: store.putBlob,
    stop() {
      stopped ??= (async () => {
        await Promise.all([
          new Promise<void>((resolve) => {
            const force = setTimeout(() => grpc.forceShutdown(), 2000);
            grpc.tryShutdown(() => {
              clearTimeout(force);
              resolve();
            });
          }),
          new Promise<void>((resolve) => {
            http.close(() => resolve());
            http.closeAllConnections();
          }),
        ]);
        logger.info('Dev subnet-api stopped.');
      })();
      return stopped;
    },
  };
}
