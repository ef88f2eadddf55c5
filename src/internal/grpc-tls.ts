/**
 * TLS of wcp's gRPC links (the subnet-api, `subnet_api.tls_*`, and the executor, `executor.tls_*`) and of a gRPC
 * server (the executor SDK's). The files named in the config are read once at start (so a missing or unreadable
 * file stops wcp with the key that names it), carried to a worker thread as bytes, and turned into gRPC
 * credentials there. On a client, a CA file makes the link TLS; a client certificate and key add mTLS. On a
 * server, a certificate and key make it TLS; a client CA makes it require client certificates that chain to it.
 */
import { type ChannelCredentials, credentials, ServerCredentials } from '@grpc/grpc-js';
import type { TlsMaterial } from './tls-files.ts';

export { readTlsMaterial, type TlsFiles, type TlsMaterial } from './tls-files.ts';

/** Channel credentials for the link: TLS (with a client certificate when given), or insecure without material. */
export function channelCredentialsFor(m: TlsMaterial | undefined): ChannelCredentials {
  if (m === undefined) return credentials.createInsecure();
  return credentials.createSsl(
    Buffer.from(m.ca),
    m.key ? Buffer.from(m.key) : null,
    m.cert ? Buffer.from(m.cert) : null,
  );
}

/** A gRPC server's TLS: its certificate chain and key (PEM), and the CA client certificates must chain to. */
export interface ServerTlsMaterial {
  cert: Uint8Array;
  key: Uint8Array;
  /** When set, every client must present a certificate signed by this CA (mTLS); otherwise none is asked for. */
  clientCa?: Uint8Array;
}

/** Server credentials: TLS (mTLS with a client CA), or insecure without material. */
export function serverCredentialsFor(m: ServerTlsMaterial | undefined): ServerCredentials {
  if (m === undefined) return ServerCredentials.createInsecure();
  return ServerCredentials.createSsl(
    m.clientCa ? Buffer.from(m.clientCa) : null,
    [{ cert_chain: Buffer.from(m.cert), private_key: Buffer.from(m.key) }],
    m.clientCa !== undefined,
  );
}
