/**
 * Starts the DEV subnet-api (storage broker gRPC + blob store HTTP) from CLI flags and prints its endpoints as
 * one JSON line on stdout, then runs until SIGINT/SIGTERM. Logs go to stderr.
 *
 *   bun scripts/dev-subnet-api.ts [--data-dir DIR] [--grpc-port N] [--http-port N] [--host H] [--secret S]
 *                                 [--max-ttl-s N] [--max-put-bytes N] [--seed ACTIVITY:KEY=FILE]...
 *
 * Without --data-dir a temp dir is used (and removed on exit). --seed places a local file as an input blob.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type DevSubnetApiOptions, startDevSubnetApi } from '../src/devtools/subnet-api/index.ts';
import { createLogger } from '../src/internal/logger.ts';

const USAGE =
  'usage: bun scripts/dev-subnet-api.ts [--data-dir DIR] [--grpc-port N] [--http-port N] [--host H] [--secret S]\n' +
  '         [--max-ttl-s N] [--max-put-bytes N] [--seed ACTIVITY:KEY=FILE]...\n';

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

const api = await startDevSubnetApi(opts);

const cleanup = async (): Promise<void> => {
  await api.stop();
  if (ownDir) rmSync(dataDir, { recursive: true, force: true });
};

const seeded: { activityId: string; key: string; path: string }[] = [];
for (const { spec, activityId, key, file } of seeds) {
  try {
    seeded.push({ activityId, key, path: await api.putBlob(activityId, key, readFileSync(file)) });
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
