/**
 * Starts the DEV subnet-api (storage broker gRPC + blob store HTTP) from CLI flags and prints its endpoints as
 * one JSON line on stdout, then runs until SIGINT/SIGTERM. Logs go to stderr.
 *
 *   bun scripts/dev-subnet-api.ts [--data-dir DIR] [--grpc-port N] [--http-port N] [--host H] [--secret S]
 *                                 [--max-ttl-s N] [--max-put-bytes N] [--seed NAMESPACE:KEY=FILE]...
 *                                 [--seed-owner-key HEX] [--seed-ca FILE]
 *                                 [--rpc-url URL --task-queue ADDR --workflow-engine ADDR] [--chain-id N]
 *                                 [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]
 *
 * Without --data-dir a temp dir is used (and removed on exit). --seed places a local file as an input blob: in an
 * activity namespace (a decimal id) directly, in any other namespace (e.g. `seed`) as a signed upload by
 * --seed-owner-key, who becomes the namespace's owner (with TLS, --seed-ca is the CA of --tls-cert).
 * With --rpc-url (and the contract addresses) every presign is checked on that chain: holder, earlier workflow
 * steps, namespace owners; without it the holder checks are off. --tls-cert/--tls-key serve gRPC over TLS;
 * --tls-client-ca also requires client certificates signed by that CA (mTLS).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { credentials } from '@grpc/grpc-js';
import { type DevSubnetApiOptions, startDevSubnetApi, uploadAsOwner } from './lib/subnet-api/index.ts';
import { createLogger } from '../src/internal/logger.ts';

const USAGE =
  'usage: bun scripts/dev-subnet-api.ts [--data-dir DIR] [--grpc-port N] [--http-port N] [--host H] [--secret S]\n' +
  '         [--max-ttl-s N] [--max-put-bytes N] [--seed NAMESPACE:KEY=FILE]... [--seed-owner-key HEX] [--seed-ca FILE]\n' +
  '         [--rpc-url URL --task-queue ADDR --workflow-engine ADDR] [--chain-id N]\n' +
  '         [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]\n';

function usage(message: string): never {
  process.stderr.write(`dev-subnet-api: ${message}\n${USAGE}`);
  process.exit(2);
}

function intFlag(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) usage(`--${name} wants a non-negative integer, got "${v}"`);
  return n;
}

function parse() {
  try {
    return parseArgs({
      options: {
        'data-dir': { type: 'string' },
        'grpc-port': { type: 'string' },
        'http-port': { type: 'string' },
        host: { type: 'string' },
        secret: { type: 'string' },
        'max-ttl-s': { type: 'string' },
        'max-put-bytes': { type: 'string' },
        seed: { type: 'string', multiple: true },
        'seed-owner-key': { type: 'string' },
        'seed-ca': { type: 'string' },
        'rpc-url': { type: 'string' },
        'chain-id': { type: 'string' },
        'task-queue': { type: 'string' },
        'workflow-engine': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'tls-client-ca': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (e) {
    return usage(e instanceof Error ? e.message : String(e));
  }
}

const values = parse();
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

// Every flag is checked before anything is created.
const grpcPort = intFlag('grpc-port', values['grpc-port']);
const httpPort = intFlag('http-port', values['http-port']);
const maxTtlS = intFlag('max-ttl-s', values['max-ttl-s']);
const maxPutBytes = intFlag('max-put-bytes', values['max-put-bytes']);
const seeds = (values.seed ?? []).map((spec) => {
  const m = /^([^:]+):([^=]+)=(.+)$/.exec(spec);
  if (!m) return usage(`--seed wants ACTIVITY:KEY=FILE, got "${spec}"`);
  return { spec, activityId: m[1] as string, key: m[2] as string, file: m[3] as string };
});

const chainId = intFlag('chain-id', values['chain-id']) ?? 31337;
const chainFlags = [values['rpc-url'], values['task-queue'], values['workflow-engine']];
if (chainFlags.some((f) => f !== undefined) && chainFlags.some((f) => f === undefined))
  usage('--rpc-url, --task-queue and --workflow-engine go together');
if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined))
  usage('--tls-cert and --tls-key go together');
if (values['tls-client-ca'] !== undefined && values['tls-cert'] === undefined)
  usage('--tls-client-ca needs --tls-cert');
const readFlagFile = (name: string, path: string): Buffer => {
  try {
    return readFileSync(path);
  } catch (e) {
    return usage(`--${name} ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
};
const ownedSeeds = seeds.filter((s) => !/^(0|[1-9][0-9]*)$/.test(s.activityId));
if (ownedSeeds.length > 0) {
  if (values['seed-owner-key'] === undefined)
    usage(`--seed into a non-activity namespace (${ownedSeeds[0]?.activityId}) needs --seed-owner-key`);
  if (values['tls-client-ca'] !== undefined) usage('--seed into a non-activity namespace is not supported with mTLS');
  if (values['tls-cert'] !== undefined && values['seed-ca'] === undefined)
    usage('--seed into a non-activity namespace over TLS needs --seed-ca');
}

const ownDir = values['data-dir'] === undefined;
const dataDir = resolve(values['data-dir'] ?? mkdtempSync(join(tmpdir(), 'wcp-dev-subnet-api-')));
const logger = createLogger('dev-subnet-api', { write: (line) => process.stderr.write(`${line}\n`) });
const opts: DevSubnetApiOptions = { dataDir, logger };
if (grpcPort !== undefined) opts.grpcPort = grpcPort;
if (httpPort !== undefined) opts.httpPort = httpPort;
if (maxTtlS !== undefined) opts.maxTtlS = maxTtlS;
if (maxPutBytes !== undefined) opts.maxPutBytes = maxPutBytes;
if (values.host !== undefined) opts.host = values.host;
if (values.secret !== undefined) opts.secret = values.secret;
opts.chainId = chainId;
if (values['rpc-url'] !== undefined) {
  opts.chain = {
    rpcUrl: values['rpc-url'],
    chainId,
    taskQueue: values['task-queue'] as string,
    workflowEngine: values['workflow-engine'] as string,
  };
}
if (values['tls-cert'] !== undefined) {
  opts.tls = {
    certPem: readFlagFile('tls-cert', values['tls-cert']),
    keyPem: readFlagFile('tls-key', values['tls-key'] as string),
    ...(values['tls-client-ca'] !== undefined
      ? { clientCaPem: readFlagFile('tls-client-ca', values['tls-client-ca']) }
      : {}),
  };
}

const api = await startDevSubnetApi(opts);

const cleanup = async (): Promise<void> => {
  await api.stop();
  if (ownDir) rmSync(dataDir, { recursive: true, force: true });
};

const seeded: { activityId: string; key: string; path: string }[] = [];
for (const { spec, activityId, key, file } of seeds) {
  try {
    const bytes = readFileSync(file);
    if (ownedSeeds.some((o) => o.spec === spec)) {
      const seedCa = values['seed-ca'];
      await uploadAsOwner({
        endpoint: api.grpcEndpoint,
        ownerKey: values['seed-owner-key'] as string,
        chainId,
        namespace: activityId,
        key,
        bytes,
        ...(seedCa !== undefined ? { channelCredentials: credentials.createSsl(readFlagFile('seed-ca', seedCa)) } : {}),
      });
      seeded.push({ activityId, key, path: api.blobPath(activityId, key) });
    } else {
      seeded.push({ activityId, key, path: await api.putBlob(activityId, key, bytes) });
    }
  } catch (e) {
    await cleanup();
    usage(`--seed ${spec}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

process.stdout.write(
  `${JSON.stringify({ grpcEndpoint: api.grpcEndpoint, httpBase: api.httpBase, dataDir, seeded })}\n`,
);

let stopping = false;
const shutdown = (): void => {
  if (stopping) return;
  stopping = true;
  void cleanup().then(() => process.exit(0));
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
