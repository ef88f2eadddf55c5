/**
 * The config file schema (`configs/{ENVIRONMENT}.toml`, snake_case keys) and its defaults. Every field has a
 * description (`README.md` lists them) and a default; durations are strings with a unit ("500ms", "2s", "5m",
 * "3h") or plain milliseconds. Values from `WCP__SECTION__KEY` env variables arrive as strings, so number,
 * boolean and list fields also accept their string forms.
 */
import * as v from 'valibot';

const DURATION_RE = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses "250ms" / "2s" / "5m" / "3h" / "1500" (ms) into milliseconds, or undefined. */
export function parseDurationMs(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? Math.round(input) : undefined;
  const m = DURATION_RE.exec(input);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * UNIT_MS[m[2] ?? 'ms']!);
}

const DURATION_HINT = 'a duration like "500ms", "2s", "5m", "3h" or a number of milliseconds';

/** The duration fields' schemas, so the config can be printed back with units (`config check`). */
export const DURATION_SCHEMAS = new WeakSet<object>();

/** Longest storage session the protocol's verifiers accept by default (auth.ts MAX_DELEGATION_TTL_MS): 31 days. */
const MAX_SESSION_TTL_MS = 31 * 24 * 3_600_000;

const duration = (min = 0, max = Number.MAX_SAFE_INTEGER) => {
  const schema = v.pipe(
    v.union(
      [v.pipe(v.number(), v.minValue(0)), v.pipe(v.string(), v.regex(DURATION_RE, DURATION_HINT))],
      DURATION_HINT,
    ),
    v.transform((x) => parseDurationMs(x) ?? 0),
    v.minValue(min, `a duration of at least ${min} ms`),
    v.maxValue(max, `a duration of at most ${max % 3_600_000 === 0 ? `${max / 3_600_000}h` : `${max} ms`}`),
  );
  DURATION_SCHEMAS.add(schema);
  return schema;
};

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  v.pipe(
    v.union(
      [v.number(), v.pipe(v.string(), v.regex(/^\s*-?\d+\s*$/), v.transform(Number))],
      `an integer from ${min} to ${max}`,
    ),
    v.integer(`an integer from ${min} to ${max}`),
    v.minValue(min, `an integer from ${min} to ${max}`),
    v.maxValue(max, `an integer from ${min} to ${max}`),
  );

const num = (min: number, max: number) =>
  v.pipe(
    v.union(
      [v.number(), v.pipe(v.string(), v.regex(/^\s*-?\d+(\.\d+)?\s*$/), v.transform(Number))],
      `a number from ${min} to ${max}`,
    ),
    v.minValue(min, `a number from ${min} to ${max}`),
    v.maxValue(max, `a number from ${min} to ${max}`),
  );

const bool = () =>
  v.union(
    [
      v.boolean(),
      v.pipe(
        v.picklist(['true', 'false', '1', '0']),
        v.transform((s) => s === 'true' || s === '1'),
      ),
    ],
    'true or false',
  );

/** Whether `s` parses as a URL of one of `protocols` with a host (`http:/host` and `http//host` do not). */
const parsesAs = (s: string, protocols: string[]): boolean => {
  try {
    const u = new URL(s);
    return protocols.includes(u.protocol) && u.host !== '' && /^[a-z]+:\/\/[^\s/?#]/i.test(s) && !/\s/.test(s);
  } catch {
    return false;
  }
};

/** Whether the port written in a URL (if any) is in 1..65535; checked before parsing so the message says why. */
const urlPortOk = (s: string): boolean => {
  const m = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(?:\[[^\]]*\]|[^:/?#]*)(?::(\d*))?/i.exec(s);
  const port = m?.[1] === undefined || m[1] === '' ? undefined : Number(m[1]);
  return port === undefined || (port >= 1 && port <= 65535);
};
const PORT_RANGE = 'a URL whose port is a port from 1 to 65535';

const url = () =>
  v.pipe(
    v.string('an http(s) URL'),
    v.check(urlPortOk, PORT_RANGE),
    v.check((s) => parsesAs(s, ['http:', 'https:']), 'an http(s) URL like http://127.0.0.1:8545'),
  );

const optWsUrl = () =>
  v.union(
    [
      v.literal(''),
      v.pipe(
        v.string(),
        v.check(urlPortOk, PORT_RANGE),
        v.check((s) => parsesAs(s, ['ws:', 'wss:']), 'a ws(s) URL like ws://127.0.0.1:8545 (or empty)'),
      ),
    ],
    'a ws(s) URL like ws://127.0.0.1:8545 (or empty)',
  );

const urlList = () =>
  v.pipe(
    v.union(
      [
        v.array(url()),
        v.pipe(
          v.string(),
          v.transform((s) =>
            s
              .split(',')
              .map((x) => x.trim())
              .filter(Boolean),
          ),
          v.array(url()),
        ),
      ],
      'a list of http(s) URLs (or a comma-separated string)',
    ),
  );

const address = () =>
  v.pipe(
    v.string('a 0x-prefixed 20-byte hex address'),
    v.regex(/^0x[0-9a-fA-F]{40}$/, 'a 0x-prefixed 20-byte hex address'),
  );
const optAddress = () => v.union([v.literal(''), address()], 'a 0x-prefixed 20-byte hex address (or empty)');

/** The port of `host:port` (its digits after the last colon). */
const portOf = (hostPort: string): number => Number(hostPort.slice(hostPort.lastIndexOf(':') + 1));

const hostPort = () =>
  v.pipe(
    v.string('host:port'),
    v.regex(/^[A-Za-z0-9.\-_[\]:]+:\d{1,5}$/, 'host:port, e.g. 127.0.0.1:7070'),
    v.check((s) => portOf(s) >= 1 && portOf(s) <= 65535, 'host:port with a port from 1 to 65535'),
  );

// biome-ignore lint/suspicious/noExplicitAny: valibot cannot type `{}` as the default of an object of optional fields
const section = <T extends v.ObjectEntries>(entries: T) => v.optional(v.strictObject(entries), {} as any);

export const ConfigFileSchema = v.strictObject({
  ethereum: section({
    /** Primary JSON-RPC endpoint. */
    rpc_url: v.optional(url(), 'http://127.0.0.1:8545'),
    /** Extra JSON-RPC endpoints (fail-over and fan-out of raw transactions). */
    rpc_urls: v.optional(urlList(), []),
    /**
     * WebSocket JSON-RPC endpoint pushing new heads (eth_subscribe newHeads): each new block starts a poll round at
     * once, so a claim does not wait out scheduler.poll_interval. Reads and transactions still use rpc_url; if it
     * drops, wcp polls on the interval and reconnects. '' = poll only.
     */
    ws_url: v.optional(optWsUrl(), ''),
    /** The chain id the endpoints must report. */
    chain_id: v.optional(int(1), 31337),
    /** Hex private key of the worker wallet. Prefer the env variable or a key file. Never logged. */
    wallet_private_key: v.optional(v.string(), ''),
    /** Path of a file holding the hex private key (used when wallet_private_key is empty). */
    wallet_key_file: v.optional(v.string(), ''),
    /** Encrypted JSON keystore (V3, scrypt; what geth and Livepeer write). Used first when set. */
    wallet_keystore: v.optional(v.string(), ''),
    /** File holding the keystore's password (first line, trailing newline ignored). Required with wallet_keystore. */
    wallet_password_file: v.optional(v.string(), ''),
    /**
     * Accept key, keystore, password and TLS client key files that group or others can read, and a
     * wallet_private_key in a config file they can read (all refused by default).
     */
    allow_insecure_key_files: v.optional(bool(), false),
    /** Expected wallet address; when set it must match the key. */
    wallet_address: v.optional(optAddress(), ''),
    subnet_control_plane_address: v.optional(address(), '0x0000000000000000000000000000000000000000'),
    task_queue_address: v.optional(address(), '0x0000000000000000000000000000000000000000'),
    workflow_engine_address: v.optional(address(), '0x0000000000000000000000000000000000000000'),
    multicall3_address: v.optional(address(), '0xcA11bde05977b3631167028862bE2a173976CA11'),
    /** Blocks a receipt must be buried under before its outcome is recorded as final (heartbeat pacing and dispatch act on inclusion). */
    confirmations: v.optional(int(0, 1000), 1),
    /** Timeout of one JSON-RPC request. */
    request_timeout: v.optional(duration(100), '10s'),
  }),
  subnet_api: section({
    /** The subnet-api gRPC endpoint (storage broker). */
    grpc_endpoint: v.optional(hostPort(), '127.0.0.1:50051'),
    request_timeout: v.optional(duration(100), '5s'),
    /** Lifetime asked for presigned URLs. */
    url_ttl: v.optional(duration(1000), '15m'),
    /**
     * Lifetime of the storage session: at start the wallet signs a delegation to an ephemeral session key that
     * signs every presign request; restart wcp before it ends to renew it (a warning comes a day ahead). At most
     * 744h (31 days), the longest the storage protocol's verifiers accept (src/storage/auth.ts); a subnet-api with
     * a lower limit refuses the session (`session_ttl_too_long` in /readyz and doctor).
     */
    session_ttl: v.optional(duration(60_000, MAX_SESSION_TTL_MS), '720h'),
    /** PEM file of the CA that signed the subnet-api's certificate; when set the link uses TLS. '' = plaintext. */
    tls_ca_file: v.optional(v.string(), ''),
    /** PEM client certificate for mTLS to the subnet-api (with tls_key_file; needs tls_ca_file). */
    tls_cert_file: v.optional(v.string(), ''),
    /** PEM private key of tls_cert_file. Refused when group or others can read it (see ethereum.allow_insecure_key_files). */
    tls_key_file: v.optional(v.string(), ''),
    /**
     * Accept a subnet-api endpoint that is not on loopback over plaintext (no tls_ca_file). The link carries the
     * storage session's signed requests and the presigned URLs it returns: refused by default.
     */
    allow_insecure_remote: v.optional(bool(), false),
  }),
  scheduler: section({
    /** Interval between pollActivity rounds. */
    poll_interval: v.optional(duration(10), '1s'),
    /** Queue offsets read per poll round (one Multicall3 batch). */
    poll_batch: v.optional(int(1, 256), 16),
    /** Most activities held and not yet finished by the executor (claiming, claimed, assigned, running); records only waiting for their complete/fail/resume tx do not count. Also caps executor dispatch. */
    max_inflight: v.optional(int(1, 10_000), 8),
    queue_name: v.optional(v.pipe(v.string(), v.minLength(1, 'a non-empty queue name')), 'default'),
    /** Heartbeat period; wcp uses at most a third of the activity's on-chain heartbeat timeout. */
    heartbeat_interval: v.optional(duration(100), '15s'),
    /** `claim`: claim and run work. `observe`: discover and record claim jobs only (a dry run; sends nothing). */
    mode: v.optional(v.picklist(['claim', 'observe'], 'claim or observe'), 'claim'),
    /** Most activities claimed in one transaction (claimActivities). 1 sends claimActivity. */
    claim_batch: v.optional(int(1, 256), 8),
  }),
  tx_policy: section({
    /** Fee raise per bump, percent (never below the 10% replacement minimum). */
    gas_bump_percent: v.optional(int(10, 1000), 20),
    /** A transaction not mined after this long is re-sent with bumped fees. */
    bump_after: v.optional(duration(100), '12s'),
    /** ... or after this many new blocks, whichever comes first. 0 (default) disables the block rule: on
     * sub-second-block chains it would bump every second; set 3 on ~12 s-block chains (Chainlink's default). */
    bump_after_blocks: v.optional(int(0, 10_000), 0),
    /** Most transactions pending at once in the nonce lane. */
    max_in_flight: v.optional(int(1, 1024), 16),
    /** Absolute cap on maxFeePerGas, gwei. */
    max_fee_per_gas_gwei: v.optional(num(0.000000001, 1_000_000), 500),
    /** Cap on maxFeePerGas as a multiple of the first suggestion. */
    fee_cap_multiplier: v.optional(num(1, 100), 5),
    /** Floor of the priority fee, gwei. */
    min_priority_fee_gwei: v.optional(num(0, 1_000_000), 0.001),
    /** Margin added to gas estimates, percent. */
    gas_limit_margin_percent: v.optional(int(0, 500), 25),
    /** "nonce too low" answers tolerated for one nonce before it is given up. */
    nonce_too_low_abort_after: v.optional(int(1, 100), 3),
    /** Outright refusals by every endpoint (sends with no answer do not count) before a never-accepted tx is given up (nonce → noop). */
    refused_abort_after: v.optional(int(1, 100), 3),
    /** Endpoints this many blocks behind the best one are not read from. */
    max_lag_blocks: v.optional(int(1, 100_000), 5),
    receipt_poll: v.optional(duration(10), '250ms'),
    /**
     * EIP-7702 batching: "auto" delegates the wallet to the pinned batch executor where the chain accepts type-4
     * transactions and the executor is deployed, and batches lifecycle calls; a wallet already delegated to anything
     * else is left alone (per-call, with a warning). "off": one transaction per call, no delegation.
     */
    batch: v.optional(v.picklist(['auto', 'off'], 'auto or off'), 'off'),
  }),
  executor: section({
    /** The executor's (WEP) gRPC TaskStream endpoint. */
    endpoint: v.optional(hostPort(), '127.0.0.1:7070'),
    keepalive_interval: v.optional(duration(50), '5s'),
    /** A peer silent this long (no Pong) is considered gone; the stream is re-dialled. */
    keepalive_timeout: v.optional(duration(100), '15s'),
    reconnect_base: v.optional(duration(10), '250ms'),
    reconnect_max: v.optional(duration(100), '10s'),
    max_message_bytes: v.optional(int(1024, 64 * 1024 * 1024), 4 * 1024 * 1024),
    /** Whether a task the executor lost (restart) is offered again (true) or failed on chain (false). */
    reoffer_lost_tasks: v.optional(bool(), true),
    /**
     * Dispatch attempts per activity before it is failed on chain. Not counted: a graceful executor shutdown, a run
     * given back as SHUTTING_DOWN, a crash that lost the task beside others (it is isolated instead), a wcp restart.
     */
    max_dispatch_attempts: v.optional(int(1, 100), 3),
    /** PEM file of the CA that signed the executor's server certificate; when set the link uses TLS. '' = plaintext. */
    tls_ca_file: v.optional(v.string(), ''),
    /** PEM client certificate wcp presents to the executor (mTLS; with tls_key_file; needs tls_ca_file). */
    tls_cert_file: v.optional(v.string(), ''),
    /** PEM private key of tls_cert_file. Refused when group or others can read it (see ethereum.allow_insecure_key_files). */
    tls_key_file: v.optional(v.string(), ''),
    /**
     * The name the executor's certificate is checked against, when it is not the endpoint's host ('' = the host).
     * Needed when the endpoint is an IP address: wcp's TLS verifies host names, not IP addresses.
     */
    tls_server_name: v.optional(v.string(), ''),
    /**
     * Accept an executor endpoint that is not on loopback over a plaintext, unauthenticated link. Whatever listens
     * there receives presigned URLs and decides the results wcp signs on chain: refused by default (a link with
     * mTLS, tls_ca_file + tls_cert_file + tls_key_file, needs no such exception).
     */
    allow_insecure_remote: v.optional(bool(), false),
    /** TESTS ONLY: run claimed activities on a built-in no-op executor instead of the gRPC executor. */
    builtin_noop_for_tests: v.optional(bool(), false),
    /** TESTS ONLY: how long the built-in no-op executor takes per activity. */
    noop_delay: v.optional(duration(0), '100ms'),
  }),
  store: section({
    /** LMDB file. Relative paths are resolved from the working directory. */
    path: v.optional(v.pipe(v.string(), v.minLength(1, 'a file path')), 'wcp.db'),
    /**
     * How long a finished activity's `done:` record is kept (then deleted; the chain keeps the history). At least
     * reconciler.window: inside the window a rescan would write it again.
     */
    done_retention: v.optional(duration(60_000), '24h'),
  }),
  reconciler: section({
    /** How far back the reconciler scans, by block timestamps. */
    window: v.optional(duration(1000), '3h'),
    /** Period of the full rescan. */
    period: v.optional(duration(1000), '5m'),
    /** Interval of the new-block follower (ActivityEnqueued ingestion). */
    follow_interval: v.optional(duration(10), '1s'),
    initial_chunk_blocks: v.optional(int(1, 1_000_000), 2000),
    max_chunk_blocks: v.optional(int(1, 1_000_000), 10_000),
    /** Longest wait between retries while the RPC is failing (exponential backoff with jitter up to this). */
    backoff_max: v.optional(duration(100), '30s'),
  }),
  shutdown: section({
    /** On SIGINT/SIGTERM: time running tasks get to finish before wcp records them and exits. */
    drain_timeout: v.optional(duration(0), '30s'),
  }),
  metrics: section({
    enabled: v.optional(bool(), true),
    /** Listen address of /metrics, /healthz, /readyz and /status. */
    listen: v.optional(hostPort(), '127.0.0.1:9464'),
    /** Accept a listen address that is not on loopback (/status shows what the worker holds): refused by default. */
    allow_non_loopback: v.optional(bool(), false),
  }),
  log: section({
    level: v.optional(v.picklist(['error', 'warn', 'info', 'debug'], 'one of error, warn, info, debug'), 'info'),
    format: v.optional(v.picklist(['auto', 'json', 'pretty'], 'one of auto, json, pretty'), 'auto'),
  }),
});

type ConfigFileOutput = v.InferOutput<typeof ConfigFileSchema>;
/** Every section is present after parsing (missing ones default to `{}`, then to their fields' defaults). */
export type ConfigFile = { [K in keyof ConfigFileOutput]-?: NonNullable<ConfigFileOutput[K]> };
export type ConfigFileInput = v.InferInput<typeof ConfigFileSchema>;
