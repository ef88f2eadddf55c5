/**
 * The TLS files of wcp's gRPC links, read into plain bytes. Apart from `grpc-tls.ts` (which turns them into
 * credentials) so that the supervisor thread, which only reads the files at start and hands the bytes to the worker
 * threads, does not load grpc-js: evaluating it cost the main thread tens of milliseconds at every start.
 */
import { readFileSync } from 'node:fs';
import { WcpError } from './errors.ts';

/** A link's TLS files (`<section>.tls_ca_file`, `tls_cert_file`, `tls_key_file`); '' means unset. */
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

function read(section: string, field: string, path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    // A value that names no file is not shown: it may be a secret pasted into the wrong field.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      throw new WcpError('CONFIG_INVALID', `${section}.${field}: no file at the configured path`, {
        details: ['the path is not shown: a value that names no file may be a secret pasted into the wrong field'],
      });
    throw new WcpError('CONFIG_INVALID', `${section}.${field}: cannot read ${path}`, {
      details: [(e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : String(e))],
    });
  }
}

/**
 * Reads a link's TLS files; `undefined` when no CA is set (plaintext link). `section` is the config section the
 * keys live in (`subnet_api`, `executor`), named by every error. Throws CONFIG_INVALID naming the key.
 */
export function readTlsMaterial(f: TlsFiles, section: string): TlsMaterial | undefined {
  if ((f.certFile === '') !== (f.keyFile === '')) {
    throw new WcpError('CONFIG_INVALID', `${section}.tls_cert_file and ${section}.tls_key_file go together`, {
      details: ['set both for a client certificate, or neither'],
    });
  }
  if (f.caFile === '') {
    if (f.certFile !== '')
      throw new WcpError('CONFIG_INVALID', `${section}.tls_cert_file needs ${section}.tls_ca_file (the server CA)`);
    return undefined;
  }
  const ca = read(section, 'tls_ca_file', f.caFile);
  if (f.certFile === '') return { ca };
  return { ca, cert: read(section, 'tls_cert_file', f.certFile), key: read(section, 'tls_key_file', f.keyFile) };
}
