/**
 * An executor's TLS files, read for `createExecutor({ tls })`: the server certificate and key make the TaskStream
 * TLS; a client CA makes it mTLS (wcp must present a certificate that CA signed — wcp's `executor.tls_cert_file`).
 */
import { readFileSync } from 'node:fs';
import type { ServerTlsMaterial } from '../internal/grpc-tls.ts';

export type { ServerTlsMaterial } from '../internal/grpc-tls.ts';

/** PEM file paths; unset or '' means not given. */
export interface ExecutorTlsFiles {
  certFile?: string | undefined;
  keyFile?: string | undefined;
  clientCaFile?: string | undefined;
}

function read(what: string, path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read the ${what} ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * Reads the files; `undefined` when none is given (a plaintext server, for loopback). Throws when the certificate
 * and key are not given together, or a client CA comes without them.
 */
export function readExecutorTls(f: ExecutorTlsFiles): ServerTlsMaterial | undefined {
  const cert = f.certFile || undefined;
  const key = f.keyFile || undefined;
  const clientCa = f.clientCaFile || undefined;
  if ((cert === undefined) !== (key === undefined))
    throw new Error('the TLS certificate and key go together: give both, or neither');
  if (cert === undefined || key === undefined) {
    if (clientCa !== undefined) throw new Error('a TLS client CA needs the server certificate and key');
    return undefined;
  }
  return {
    cert: read('TLS certificate', cert),
    key: read('TLS key', key),
    ...(clientCa !== undefined ? { clientCa: read('TLS client CA', clientCa) } : {}),
  };
}
