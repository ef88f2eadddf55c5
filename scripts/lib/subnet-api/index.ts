/**
 * The project's DEV subnet-api, for `npm run dev` and tests: a real grpc-js server implementing
 * `wcp.storage.v1.StorageBroker`, plus a real node:http server serving a blob store on disk through URLs it
 * signs (HMAC-SHA256 over method, activity id, key and expiry). It is the reference of the subnet-api's checks
 * (grpc.ts): signed requests, the on-chain holder and entitlement rules (with `chain`), namespace ownership by
 * uploader, and TLS or mTLS on the gRPC link (with `tls`). Not for production: one process, one secret, state in
 * one data dir; the blob store's URLs are plain http.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server as GrpcServer, ServerCredentials } from '@grpc/grpc-js';
import { createRpcTransport } from '../../../src/chain/transport.ts';
import { createLogger, type Logger } from '../../../src/internal/logger.ts';
import { MAX_DELEGATION_TTL_MS } from '../../../src/storage/auth.ts';
import { createEntitlementChain, type EntitlementChain } from '../../../src/storage/entitlement.ts';
import { loadStorageBrokerService } from '../../../src/storage/wire.ts';
import { createBlobStore } from './blob-store.ts';
import { createBrokerService, type PresignAuthRequest, type PresignRecord } from './grpc.ts';
import { createBlobHandler } from './http.ts';
import { createNamespaceOwners } from './owners.ts';

export type { PresignAuthRequest, PresignRecord } from './grpc.ts';
export { uploadAsOwner } from './owner-upload.ts';
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
  /**
   * Longest storage session (the wallet's delegation) accepted, seconds (default 31 days, the protocol's limit);
   * a longer one is refused with UNAUTHENTICATED `delegation_too_long: …`.
   */
  maxSessionTtlS?: number;
  /** Clock seam, Unix ms (default Date.now): tests move it to expire URLs without sleeping. */
  now?: () => number;
  /**
   * The chain to check holders and entitlements on (RPC URL, chain id, contracts). Without it the `authorize`
   * hook decides (a warning says so at start); signatures and namespace ownership are checked either way.
   */
  chain?: DevSubnetApiChain;
  /** Chain id signed requests must name when `chain` is not set (default 31337, anvil's). */
  chainId?: number;
  /** Without `chain`: plays the holder check; false → PERMISSION_DENIED (default: allow all). */
  authorize?: (req: PresignAuthRequest) => boolean;
  /** Serve the gRPC link over TLS with this certificate; with `clientCaPem`, require client certificates (mTLS). */
  tls?: { certPem: Buffer; keyPem: Buffer; clientCaPem?: Buffer };
  logger?: Logger;
}

/** Where the dev subnet-api reads the chain. */
export interface DevSubnetApiChain {
  rpcUrl: string;
  chainId: number;
  taskQueue: string;
  workflowEngine: string;
}

export interface DevSubnetApi {
  /** gRPC target for `createStorageBroker({ endpoint })`, e.g. `127.0.0.1:40123`. */
  grpcEndpoint: string;
  /** Base of blob URLs, e.g. `http://127.0.0.1:40124`. */
  httpBase: string;
  /** Absolute path of one object on disk (throws on an invalid activity id or key). */
  blobPath(activityId: string, key: string): string;
  /**
   * Writes an object directly on disk (atomically): the operator's path, like a shell on the host — no signature,
   * and no owner recorded. An activity can read a non-activity namespace only once its owner has uploaded there
   * with a signature (`uploadAsOwner`), so seed workflow inputs that way. Returns the path.
   */
  putBlob(activityId: string, key: string, bytes: Uint8Array | string): Promise<string>;
  /** Every presign decision so far (granted or refused), oldest first. */
  presignLog(): PresignRecord[];
  /** Owners of the non-activity namespaces (lower-case addresses). */
  owners(): Record<string, string>;
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

  const owners = createNamespaceOwners(opts.dataDir);
  const log: PresignRecord[] = [];
  let chain: EntitlementChain | undefined;
  if (opts.chain) {
    const rpc = createRpcTransport({
      urls: [opts.chain.rpcUrl],
      chainId: opts.chain.chainId,
      timeoutMs: 5000,
      maxLagBlocks: 10,
      endpointBackoffMs: 200,
      endpointBackoffMaxMs: 2000,
    });
    chain = createEntitlementChain(rpc, opts.chain);
  } else {
    logger.warn('No chain configured: holder and entitlement checks are OFF (the authorize hook decides). Dev only.');
  }
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
      chainId: opts.chain?.chainId ?? opts.chainId ?? 31337,
      maxSessionTtlMs: opts.maxSessionTtlS !== undefined ? opts.maxSessionTtlS * 1000 : MAX_DELEGATION_TTL_MS,
      chain,
      authorize: opts.authorize ?? (() => true),
      owners,
      record: (r) => {
        if (log.length >= 10_000) log.shift();
        log.push(r);
      },
      logger: logger.child('grpc'),
    }),
  );
  let grpcPort: number;
  try {
    grpcPort = await new Promise<number>((resolve, reject) => {
      grpc.bindAsync(`${urlHost}:${opts.grpcPort ?? 0}`, serverCredentials(opts.tls), (err, port) =>
        err ? reject(err) : resolve(port),
      );
    });
  } catch (e) {
    http.close();
    throw e;
  }
  const grpcEndpoint = `${urlHost}:${grpcPort}`;
  logger.info('Dev subnet-api listening.', {
    grpc: grpcEndpoint,
    grpc_tls: opts.tls ? (opts.tls.clientCaPem ? 'mtls' : 'tls') : 'off',
    http: httpBase,
    data_dir: opts.dataDir,
    chain: opts.chain ? opts.chain.rpcUrl : 'off',
  });

  let stopped: Promise<void> | undefined;
  return {
    grpcEndpoint,
    httpBase,
    blobPath: store.blobPath,
    putBlob: store.putBlob,
    presignLog: () => [...log],
    owners: owners.all,
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

/** TLS server credentials (client certificates required when a client CA is given), or insecure. */
function serverCredentials(tls: DevSubnetApiOptions['tls']): ServerCredentials {
  if (!tls) return ServerCredentials.createInsecure();
  return ServerCredentials.createSsl(
    tls.clientCaPem ?? null,
    [{ private_key: tls.keyPem, cert_chain: tls.certPem }],
    tls.clientCaPem !== undefined,
  );
}
