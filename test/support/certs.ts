/**
 * Real certificates made at test time with openssl, in a directory of the caller's: CAs (`<name>-ca.pem` / `.key`)
 * and leaf certificates they sign (`<name>.pem` / `.key`), for TLS and mTLS tests of the gRPC links.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A certificate maker writing into `dir`. Certificates are valid one day. */
export function certMaker(dir: string) {
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  return {
    /** Absolute path of a file in `dir`. */
    path: (name: string) => join(dir, name),
    /** A self-signed CA: `<name>-ca.pem` and `<name>-ca.key`. */
    ca(name: string): void {
      openssl(
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        `/CN=${name} CA`,
        '-keyout',
        `${name}-ca.key`,
        '-out',
        `${name}-ca.pem`,
      );
    },
    /** `<name>.pem` / `.key` signed by CA `ca`, with the extensions `ext` (e.g. `subjectAltName=…`). */
    leaf(ca: string, name: string, ext: string): void {
      openssl(
        'req',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        `/CN=${name}`,
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.csr`,
      );
      writeFileSync(join(dir, `${name}.ext`), ext);
      openssl(
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        `${ca}-ca.pem`,
        '-CAkey',
        `${ca}-ca.key`,
        '-CAcreateserial',
        '-days',
        '1',
        '-extfile',
        `${name}.ext`,
        '-out',
        `${name}.pem`,
      );
    },
  };
}

/** The usual set: CA `net` signing `server` (localhost, 127.0.0.1, executor.test) and `client`; CA `other` signing `rogue`. */
export function makeTestPki(dir: string): ReturnType<typeof certMaker> {
  const m = certMaker(dir);
  m.ca('net');
  m.ca('other');
  m.leaf('net', 'server', 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:executor.test\nextendedKeyUsage=serverAuth\n');
  m.leaf('net', 'client', 'extendedKeyUsage=clientAuth\n');
  m.leaf('other', 'rogue', 'extendedKeyUsage=clientAuth\n');
  return m;
}
