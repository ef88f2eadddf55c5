/**
 * The doctor's checks of the local links and files: the executor (dial its TaskStream, read Hello and
 * Capabilities, then close the stream without assigning anything; skipped while a wcp daemon holds the store, as
 * that daemon owns the executor link), the subnet-api (one signed probe presign with a session like the daemon's:
 * it must be the storage service and accept the worker's session) — both over the TLS or mTLS their `tls_*` keys
 * configure —, the store (its directory is writable or creatable, every page and record reads back, and no other
 * wcp holds it).
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ChannelCredentials, ClientDuplexStream, ServiceClientConstructor } from '@grpc/grpc-js';
import type { WcpConfig } from '../config/load.ts';
import { errorText } from '../internal/errors.ts';
import { createLogger } from '../internal/logger.ts';
import { channelCredentialsFor, readTlsMaterial } from '../internal/grpc-tls.ts';
import { createPresignSigner, createStorageSession } from '../storage/auth.ts';
import { createStorageBroker } from '../storage/broker.ts';
import { classifyStorageFailure, describeRefusal } from '../storage/refusal.ts';
import { storeHolder } from '../store/lock.ts';
import { checkStoreFile, openStore } from '../store/store.ts';
import { loadExecutorService, PROTOCOL_VERSION, type WcpMessageWire } from '../taskstream/protocol.ts';
import { parseExecutorMessage } from '../taskstream/validate.ts';
import { type CheckResult, fail, pass, skip, warn } from './check.ts';

const PROBE_MS = 5_000;

/** Dials the executor, waits for Hello + Capabilities, then answers HelloAck(accepted=false) and closes. */
export function executorCheck(config: WcpConfig): Promise<CheckResult> {
  const name = 'executor';
  const endpoint = config.executor.endpoint;
  const daemon = runningDaemon(config.store.path);
  if (daemon !== undefined) {
    return Promise.resolve(
      skip(name, `the running wcp (pid ${daemon}) owns the executor link; its /status shows the executor`),
    );
  }
  if (config.executor.builtinNoopForTests)
    return Promise.resolve(
      warn(
        name,
        'executor.builtin_noop_for_tests is on: the built-in no-op runs activities',
        'tests only: turn it off in production',
      ),
    );
  const ex = config.executor;
  let creds: ChannelCredentials;
  try {
    creds = channelCredentialsFor(
      readTlsMaterial({ caFile: ex.tlsCaFile, certFile: ex.tlsCertFile, keyFile: ex.tlsKeyFile }, 'executor'),
    );
  } catch (e) {
    return Promise.resolve(fail(name, errorText(e), 'fix the executor.tls_* file paths and permissions'));
  }
  const tlsFix = 'check executor.tls_ca_file, tls_cert_file, tls_key_file and tls_server_name against the executor';
  const Executor = loadExecutorService() as ServiceClientConstructor;
  const client = new Executor(
    endpoint,
    creds,
    ex.tlsServerName !== '' ? { 'grpc.ssl_target_name_override': ex.tlsServerName } : {},
  );
  return new Promise<CheckResult>((resolve) => {
    let hello: { executor_id: string; executor_version: string; protocol_version: number } | undefined;
    let settled = false;
    const call = (client as unknown as { TaskStream(): ClientDuplexStream<WcpMessageWire, unknown> }).TaskStream();
    const done = (r: CheckResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      try {
        call.end();
        call.cancel();
      } catch {
        // already closed
      }
      client.close();
      resolve(r);
    };
    const timer = setTimeout(
      () =>
        done(
          hello
            ? fail(
                name,
                `${endpoint}: Hello from ${hello.executor_id} but no Capabilities within ${PROBE_MS} ms`,
                'check the executor implements the TaskStream protocol (proto/execution/v1)',
              )
            : fail(
                name,
                `${endpoint}: no executor answered within ${PROBE_MS} ms`,
                'start the executor (the WEP) and check executor.endpoint',
              ),
        ),
      PROBE_MS,
    );
    call.on('error', (e: Error & { details?: string }) => {
      const text = `${e.details ?? ''} ${e.message}`;
      // A refused handshake reads as "No connection established" too: name TLS when the text does.
      if (/certificate|ssl|tls|handshake|alert/i.test(text))
        return done(
          fail(name, `${endpoint}: TLS handshake failed (${(e.details ?? e.message).slice(0, 200)})`, tlsFix),
        );
      const cause = /ECONNREFUSED|No connection established|connect/i.test(text)
        ? 'connection refused (no executor listening)'
        : (e.details ?? e.message);
      done(fail(name, `${endpoint}: ${cause}`, 'start the executor (the WEP) and check executor.endpoint'));
    });
    call.on('data', (raw: unknown) => {
      const p = parseExecutorMessage(raw);
      if (!p.ok)
        return done(fail(name, `${endpoint}: bad message: ${p.reason}`, 'the executor does not speak TaskStream v1'));
      if (p.msg.kind === 'hello') {
        hello = p.msg;
        if (hello.protocol_version !== PROTOCOL_VERSION) {
          return done(
            fail(
              name,
              `${endpoint}: executor ${hello.executor_id} speaks protocol v${hello.protocol_version}, wcp v${PROTOCOL_VERSION}`,
              'upgrade the executor or wcp so the majors match',
            ),
          );
        }
        // Accepted, so the executor sends its Capabilities; the stream is closed right after them and nothing is
        // assigned (the executor keeps whatever it holds for the daemon's next stream).
        call.write({
          hello_ack: { protocol_version: PROTOCOL_VERSION, wcp_version: 'doctor', accepted: true, reason: '' },
        });
        return;
      }
      if (p.msg.kind === 'capabilities' && hello) {
        const types = p.msg.activity_types;
        return done(
          types.length
            ? pass(
                name,
                `${endpoint}: ${hello.executor_id} ${hello.executor_version}, protocol v${hello.protocol_version}, concurrency ${p.msg.max_concurrency}, types ${types.join(', ')}`,
              )
            : warn(
                name,
                `${endpoint}: ${hello.executor_id} serves no activity type`,
                'configure the executor with the activity types of your queue',
              ),
        );
      }
    });
  });
}

/**
 * Whether the subnet-api is the storage service and accepts this worker: one probe presign (an object of no
 * activity this worker holds), signed by a fresh session the wallet delegates for `subnet_api.session_ttl`, as
 * `wcp run` does. A URL or a refusal about the object passes; a refusal of the worker fails with its cause and fix.
 */
export async function subnetApiCheck(config: WcpConfig): Promise<CheckResult> {
  const name = 'subnet-api';
  const endpoint = config.subnetApi.grpcEndpoint;
  const sa = config.subnetApi;
  let broker: ReturnType<typeof createStorageBroker>;
  try {
    const creds = channelCredentialsFor(
      readTlsMaterial({ caFile: sa.tlsCaFile, certFile: sa.tlsCertFile, keyFile: sa.tlsKeyFile }, 'subnet_api'),
    );
    const session = createStorageSession({
      walletKey: config.ethereum.privateKey.reveal(),
      chainId: config.ethereum.chainId,
      ttlMs: sa.sessionTtlMs,
    });
    broker = createStorageBroker({
      endpoint,
      signer: createPresignSigner(session),
      chainId: config.ethereum.chainId,
      timeoutMs: PROBE_MS,
      channelCredentials: creds,
      logger: createLogger('doctor', { level: 'error', write: () => {} }),
    });
  } catch (e) {
    return fail(name, errorText(e), 'fix the subnet_api.tls_* file paths and permissions');
  }
  try {
    await broker.presign({ activityId: '0', key: 'wcp-storage-probe', method: 'GET', ttlSeconds: 60, probe: true });
    return pass(name, `${endpoint}: the storage service answers and accepts the worker's session`);
  } catch (e) {
    const f = classifyStorageFailure(e);
    if (f.kind === 'activity')
      return pass(name, `${endpoint}: the storage service answers and accepts the worker's session`);
    if (f.kind === 'worker') {
      const { cause, fix } = describeRefusal(f.reason, endpoint);
      return fail(name, `${cause} [${f.reason}]`, fix);
    }
    return fail(
      name,
      `${endpoint}: not reachable (${errorText(e).slice(0, 160)})`,
      'start the subnet-api (storage broker) and check subnet_api.grpc_endpoint; activities with blob inputs or outputs need it',
    );
  } finally {
    broker.close();
  }
}

/** The pid of a live wcp holding the store's lock (`<store>.pid`), if any (`?` when it left no record). */
function runningDaemon(storePath: string): number | '?' | undefined {
  const holder = storeHolder(storePath);
  return holder === undefined ? undefined : (holder.pid ?? '?');
}

/** The nearest directory of `dir` (itself or a parent) that exists. */
function nearestExisting(dir: string): string {
  let d = dir;
  while (!existsSync(d) && dirname(d) !== d) d = dirname(d);
  return d;
}

/**
 * The store: its directory writable (or missing and creatable: `wcp run` creates it 0700), the file an LMDB store
 * whose every page and record reads back (when it exists), and not held by a running wcp.
 */
export async function storeCheck(config: WcpConfig): Promise<CheckResult> {
  const path = config.store.path;
  const name = 'store';
  const dir = dirname(path);
  const missing = !existsSync(dir);
  const parent = missing ? nearestExisting(dir) : dir;
  try {
    accessSync(parent, constants.W_OK);
  } catch {
    return fail(
      name,
      missing ? `${dir} is missing and ${parent} is not writable` : `${dir} is not writable`,
      'give the wcp user write access to the store directory, or change store.path',
    );
  }
  if (missing) return pass(name, `${path}: ${dir} missing, will be created (0700)`);
  let records: number | undefined;
  try {
    checkStoreFile(path);
    records = await readEveryRecord(path);
  } catch (e) {
    return fail(name, errorText(e), `move ${path} aside (\`mv ${path} ${path}.bad\`); wcp rebuilds it from the chain`);
  }
  const pid = runningDaemon(path);
  if (pid !== undefined) {
    return warn(
      name,
      `${path} is in use by a running wcp (pid ${pid})`,
      'fine if that is the daemon you are checking; a second `wcp run` on this store would exit 11',
    );
  }
  return pass(
    name,
    `${path}: ${records === undefined ? 'will be created' : `an LMDB store, ${records} records read back, not in use`}`,
  );
}

/** Opens the store read-only and reads every record (undefined when there is no store yet). */
async function readEveryRecord(path: string): Promise<number | undefined> {
  if (!existsSync(path)) return undefined;
  const store = openStore({ path, readOnly: true, logger: createLogger('doctor', { level: 'error' }) });
  try {
    let n = 0;
    let after: string | undefined;
    for (;;) {
      const page = store.scan('', { limit: 1000, ...(after !== undefined ? { after } : {}) });
      n += page.length;
      if (page.length < 1000) return n;
      after = page[page.length - 1]?.key;
    }
  } finally {
    await store.close();
  }
}
