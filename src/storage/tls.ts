/**
 * TLS of the subnet-api link: the files named in the config are read once at start (so a missing or unreadable
 * file stops wcp with the key that names it), carried to the executor thread as bytes, and turned into gRPC
 * channel credentials there. A CA file makes the link TLS; a client certificate and key add mTLS.
 */
import { readFileSync } from 'node:fs';
import { type ChannelCredentials, credentials } from '@grpc/grpc-js';
import { WcpError } from '../internal/errors.ts';

/** The config's TLS files (`subnet_api.tls_ca_file`, `tls_cert_file`, `tls_key_file`); '' means unset. */
export interface TlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** PEM bytes; plain data, so it crosses into a worker thread. */
export interface TlsMaterial {
  ca: Uint8Array;
  cert?: Uint8Array;
  key?: Uint8Array;
}

function read(field: string, path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new WcpError('CONFIG_INVALID', `subnet_api.${field}: cannot read ${path}`, {
      details: [e instanceof Error ? e.message : String(e)],
    });
  }
}

/** Reads the TLS files; `undefined` when no CA is set (plaintext link). Throws CONFIG_INVALID naming the key. */
export function readTlsMaterial(f: TlsFiles): TlsMaterial | undefined {
  if ((f.certFile === '') !== (f.keyFile === '')) {
    throw new WcpError('CONFIG_INVALID', 'subnet_api.tls_cert_file and subnet_api.tls_key_file go together', {
      details: ['set both for a client certificate, or neither'],
    });
  }
  if (f.caFile === '') {
    if (f.certFile !== '')
      throw new WcpError('CONFIG_INVALID', 'subnet_api.tls_cert_file needs subnet_api.tls_ca_file (the server CA)');
    return undefined;
  }
  const ca = read('tls_ca_file', f.caFile);
  if (f.certFile === '') return { ca };
  return { ca, cert: read('tls_cert_file', f.certFile), key: read('tls_key_file', f.keyFile) };
}

/** Channel credentials for the link: TLS (with a client certificate when given), or insecure without material. */
export function channelCredentialsFor(m: TlsMaterial | undefined): ChannelCredentials {
  if (m === undefined) return credentials.createInsecure();
  return credentials.createSsl(
    Buffer.from(m.ca),
    m.key ? Buffer.from(m.key) : null,
    m.cert ? Buffer.from(m.cert) : null,
  );
}
