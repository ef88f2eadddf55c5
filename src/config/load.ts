/**
 * Loads the config once, at the edge: TOML file → `WCP__SECTION__KEY` env overrides → valibot → one resolved,
 * frozen object. Where the file comes from, first match wins:
 *   1. an explicit path (`--config`, or `WCP_CONFIG`);
 *   2. `configs/{ENVIRONMENT}.toml` under `WCP_CONFIG_DIR` or the working directory (ENVIRONMENT default `local`);
 *   3. for `local` only, the copy of `configs/local.toml` embedded in the binary.
 * A bad config throws one `CONFIG_INVALID` error listing every bad field, the value it got and what it wanted.
 * The private key is wrapped in a `Secret` and registered for redaction before anything can print it. A refused URL
 * field is shown only masked (`maskUrlText`); a path field naming no file is registered as a secret (it may be a
 * password pasted into the wrong field).
 */
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { isAbsolute, join, resolve } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import * as v from 'valibot';
import { WcpError } from '../internal/errors.ts';
import {
  displayUrl,
  maskUrlText,
  redact,
  registerKeyShapedValues,
  registerSecret,
  registerUrlSecrets,
  urlCredentialProblem,
} from '../internal/redact.ts';
import { EMBEDDED_CONFIGS } from './embedded.ts';
import { fileModeProblems, resolveKey } from './keys.ts';
import { closestName, envVarNames, KNOWN_DIRECT_ENV, sectionKeys } from './names.ts';
import { type ConfigFile, ConfigFileSchema } from './schema.ts';
import { Secret } from './secret.ts';

export interface WcpConfig {
  environment: string;
  /** Where the file came from: a path, or `embedded:local`. */
  source: string;
  ethereum: {
    rpcUrls: string[];
    /** New-heads WebSocket endpoint ('' = none). */
    wsUrl: string;
    chainId: number;
    walletAddress: string;
    privateKey: Secret;
    subnetControlPlane: string;
    taskQueue: string;
    workflowEngine: string;
    multicall3: string;
    confirmations: number;
    requestTimeoutMs: number;
  };
  subnetApi: {
    grpcEndpoint: string;
    requestTimeoutMs: number;
    urlTtlMs: number;
    sessionTtlMs: number;
    /** Absolute paths, '' when unset. */
    tlsCaFile: string;
    tlsCertFile: string;
    tlsKeyFile: string;
    /** A non-loopback endpoint without TLS was explicitly allowed. */
    allowInsecureRemote: boolean;
  };
  scheduler: {
    pollIntervalMs: number;
    pollBatch: number;
    maxInflight: number;
    queueName: string;
    heartbeatIntervalMs: number;
    mode: 'claim' | 'observe';
    claimBatch: number;
  };
  txPolicy: {
    gasBumpPercent: number;
    bumpAfterMs: number;
    bumpAfterBlocks: number;
    maxInFlight: number;
    maxFeePerGasGwei: number;
    feeCapMultiplier: number;
    minPriorityFeeGwei: number;
    gasLimitMarginPercent: number;
    nonceTooLowAbortAfter: number;
    refusedAbortAfter: number;
    maxLagBlocks: number;
    receiptPollMs: number;
    batch: 'auto' | 'off';
  };
  executor: {
    endpoint: string;
    keepaliveIntervalMs: number;
    keepaliveTimeoutMs: number;
    reconnectBaseMs: number;
    reconnectMaxMs: number;
    maxMessageBytes: number;
    reofferLostTasks: boolean;
    maxDispatchAttempts: number;
    allowInsecureRemote: boolean;
    /** Absolute paths, '' when unset: the executor's CA (TLS), wcp's client certificate and key (mTLS). */
    tlsCaFile: string;
    tlsCertFile: string;
    tlsKeyFile: string;
    /** Checked against the executor's certificate instead of the endpoint's host; '' = the host. */
    tlsServerName: string;
    builtinNoopForTests: boolean;
    noopDelayMs: number;
  };
  store: { path: string; doneRetentionMs: number };
  reconciler: {
    windowMs: number;
    periodMs: number;
    followIntervalMs: number;
    initialChunkBlocks: number;
    maxChunkBlocks: number;
    backoffMaxMs: number;
  };
  shutdown: { drainTimeoutMs: number };
  metrics: { enabled: boolean; listen: string; allowNonLoopback: boolean };
  log: { level: 'error' | 'warn' | 'info' | 'debug'; format: 'auto' | 'json' | 'pretty' };
}

export interface LoadConfigOptions {
  /** Explicit file path (`--config`). */
  path?: string;
  env?: Record<string, string | undefined>;
  cwd?: string;
}

const ENV_PREFIX = 'WCP__';
const SECRET_FIELDS = new Set(['ethereum.wallet_private_key']);
/** Fields holding URLs: a value that is refused is shown only through `maskUrlText`. */
const URL_FIELDS = /^ethereum\.(rpc_url|rpc_urls|ws_url)(\.|$)/;
/**
 * Fields naming files. A value that names no existing file is never printed (it is registered as a secret): a
 * keystore password, a key or a mnemonic pasted into the wrong field is exactly such a value.
 */
const PATH_FIELDS = [
  ['ethereum', 'wallet_key_file'],
  ['ethereum', 'wallet_keystore'],
  ['ethereum', 'wallet_password_file'],
  ['subnet_api', 'tls_ca_file'],
  ['subnet_api', 'tls_cert_file'],
  ['subnet_api', 'tls_key_file'],
  ['executor', 'tls_ca_file'],
  ['executor', 'tls_cert_file'],
  ['executor', 'tls_key_file'],
] as const;

function locate(opts: LoadConfigOptions, environment: string): { text: string; source: string } {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const explicit = opts.path ?? env.WCP_CONFIG;
  if (explicit) {
    const p = isAbsolute(explicit) ? explicit : resolve(cwd, explicit);
    if (!existsSync(p)) throw new WcpError('CONFIG_NOT_FOUND', `config file not found: ${p}`);
    return { text: readFileSync(p, 'utf8'), source: p };
  }
  if (!/^[A-Za-z0-9_-]+$/.test(environment)) {
    throw new WcpError(
      'CONFIG_INVALID',
      `ENVIRONMENT must be a plain name like "local" or "testnet", got ${JSON.stringify(environment)}`,
    );
  }
  const dir = env.WCP_CONFIG_DIR ? resolve(cwd, env.WCP_CONFIG_DIR) : join(cwd, 'configs');
  const p = join(dir, `${environment}.toml`);
  if (existsSync(p)) return { text: readFileSync(p, 'utf8'), source: p };
  const embedded = EMBEDDED_CONFIGS[environment];
  if (embedded !== undefined) return { text: embedded, source: `embedded:${environment}` };
  throw new WcpError('CONFIG_NOT_FOUND', `no config for ENVIRONMENT=${environment}: ${p} does not exist`, {
    details: ['pass --config <file>, set WCP_CONFIG_DIR, or use ENVIRONMENT=local for the built-in default'],
  });
}

/**
 * Applies `WCP__SECTION__KEY=value` variables onto the parsed file (values stay strings; the schema coerces), and
 * `WCP_LOG_LEVEL` / `WCP_LOG_FORMAT` as short forms of `WCP__LOG__LEVEL` / `WCP__LOG__FORMAT`. Any other
 * `WCP_`-prefixed variable is refused with the closest valid name (a typo must not be silently ignored).
 */
function applyEnv(raw: Record<string, unknown>, env: Record<string, string | undefined>): string[] {
  const problems: string[] = [];
  const set = (sec: string, key: string, value: string) => {
    const current = raw[sec];
    const target =
      current && typeof current === 'object' && !Array.isArray(current) ? (current as Record<string, unknown>) : {};
    target[key] = value;
    raw[sec] = target;
  };
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('WCP_') || value === undefined) continue;
    registerKeyShapedValues(value);
    if (name === 'WCP_LOG_LEVEL' || name === 'WCP_LOG_FORMAT') {
      if (env[`WCP__LOG__${name.slice(8)}`] === undefined) set('log', name.slice(8).toLowerCase(), value);
      continue;
    }
    if (KNOWN_DIRECT_ENV.has(name)) continue;
    const parts = name.startsWith(ENV_PREFIX) ? name.slice(ENV_PREFIX.length).toLowerCase().split('__') : [];
    const known = parts.length === 2 && parts[0] && parts[1] && sectionKeys(parts[0])?.includes(parts[1]);
    if (!known) {
      const hint = closestName(name, [...envVarNames(), ...KNOWN_DIRECT_ENV]);
      problems.push(
        `${name}: unknown variable${hint ? `; did you mean ${hint}?` : ''} (config keys are WCP__SECTION__KEY, e.g. WCP__SCHEDULER__POLL_INTERVAL)`,
      );
      continue;
    }
    set(parts[0] as string, parts[1] as string, value);
  }
  return problems;
}

/** Registers every key-shaped string of the parsed file as a secret (a key pasted into the wrong field). */
function registerKeyShapedStrings(v: unknown): void {
  if (typeof v === 'string') registerKeyShapedValues(v);
  else if (Array.isArray(v)) for (const x of v) registerKeyShapedStrings(x);
  else if (v && typeof v === 'object') for (const x of Object.values(v)) registerKeyShapedStrings(x);
}

/** A refused URL-field value with its possible credentials masked (a comma list from the env: each item). */
function maskUrlValue(value: unknown): unknown {
  if (typeof value === 'string')
    return value.includes(',')
      ? value
          .split(',')
          .map((x) => maskUrlText(x))
          .join(',')
      : maskUrlText(value);
  if (Array.isArray(value)) return value.map(maskUrlValue);
  return value;
}

function show(path: string, value: unknown): string {
  if (SECRET_FIELDS.has(path)) return '[REDACTED]';
  if (value === undefined) return 'nothing';
  const s = redact(JSON.stringify(URL_FIELDS.test(path) ? maskUrlValue(value) : value));
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function issueLines(issues: v.BaseIssue<unknown>[]): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    const keys = (issue.path ?? []).map((p) => String(p.key));
    const path = keys.join('.');
    if (issue.type === 'strict_object' || issue.expected === 'never') {
      const valid =
        keys.length === 1
          ? Object.keys(ConfigFileSchema.entries)
          : keys.length === 2
            ? (sectionKeys(keys[0] as string) ?? [])
            : [];
      const hint = closestName(keys[keys.length - 1] ?? '', valid);
      lines.push(
        `${path || '(top level)'}: unknown key${hint ? `; did you mean ${[...keys.slice(0, -1), hint].join('.')}?` : ''}`,
      );
      continue;
    }
    // Union issues carry the useful message on the union itself.
    lines.push(`${path}: got ${show(path, issue.input)}, expected ${issue.message.replace(/^Invalid \w+: /, '')}`);
  }
  return lines;
}

/** The host of `host:port`, without IPv6 brackets, lower case. */
const hostOf = (hostPort: string): string =>
  hostPort
    .slice(0, hostPort.lastIndexOf(':'))
    .replace(/^\[|\]$/g, '')
    .toLowerCase();

/** Whether `host:port` names this machine only (127.0.0.0/8, ::1, localhost). */
export function isLoopback(hostPort: string): boolean {
  const host = hostOf(hostPort);
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Links that would expose the worker when not on loopback, unless explicitly allowed. A remote executor is
 * accepted over mTLS (CA, client certificate and key all set): wcp then knows it talks to the executor its CA
 * vouches for, and the executor that only wcp's certificate connects.
 */
/**
 * Lane slots claims leave free (`tx_policy.max_in_flight` minus these is the most a claim may find pending), so
 * heartbeats and finishing transactions always find room. Here, not in the lifecycle, because the config refuses a
 * lane too small to ever claim.
 */
export const CLAIM_RESERVED_SLOTS = 2;

/** The smallest `tx_policy.max_in_flight` that ever lets a claim through: one slot beyond the reserved ones. */
export const MIN_LANE_FOR_CLAIMS = CLAIM_RESERVED_SLOTS + 1;

/** Values that are each valid but do not fit together; every one found is reported. */
function relationProblems(f: ConfigFile): string[] {
  const problems: string[] = [];
  if (f.scheduler.mode === 'claim' && f.tx_policy.max_in_flight < MIN_LANE_FOR_CLAIMS) {
    problems.push(
      `tx_policy.max_in_flight: got ${f.tx_policy.max_in_flight}, expected at least ${MIN_LANE_FOR_CLAIMS}: a claim is sent only while fewer than max_in_flight − ${CLAIM_RESERVED_SLOTS} (the slots kept for heartbeats and finishing transactions) = ${f.tx_policy.max_in_flight - CLAIM_RESERVED_SLOTS} transactions are pending, so this lane would never claim (or set scheduler.mode = "observe")`,
    );
  }
  // Liveness, the part that needs no chain (the rest is checked at start: src/lifecycle/liveness.ts): a heartbeat
  // counts as landed once its receipt is seen, and the next one waits for that.
  if (f.tx_policy.receipt_poll * 2 > f.scheduler.heartbeat_interval) {
    problems.push(
      `tx_policy.receipt_poll ${f.tx_policy.receipt_poll} ms × 2 > scheduler.heartbeat_interval ${f.scheduler.heartbeat_interval} ms: a heartbeat is seen landed only at the next receipt poll, so the poll must be under half the heartbeat interval`,
    );
  }
  if (f.store.done_retention < f.reconciler.window) {
    problems.push(
      `store.done_retention ${f.store.done_retention} ms < reconciler.window ${f.reconciler.window} ms: a done record deleted inside the window would be written again by the next rescan; keep it at least as long as the window`,
    );
  }
  return problems;
}

/** Configured URLs whose credentials are too short to mask (see `urlCredentialProblem`). */
function urlProblems(f: ConfigFile): string[] {
  const out: string[] = [];
  const fields: Array<[string, string]> = [
    ['ethereum.rpc_url', f.ethereum.rpc_url],
    ...f.ethereum.rpc_urls.map((u, i): [string, string] => [`ethereum.rpc_urls.${i}`, u]),
    ['ethereum.ws_url', f.ethereum.ws_url],
  ];
  for (const [field, u] of fields) {
    const problem = u ? urlCredentialProblem(u) : undefined;
    if (problem) out.push(`${field}: got ${JSON.stringify(maskUrlText(u))}, expected ${problem}`);
  }
  return out;
}

/** Registers the value of every path field that names no file (see `PATH_FIELDS`) as a secret. */
function registerUnknownPaths(f: ConfigFile, cwd: string): void {
  for (const [sec, key] of PATH_FIELDS) {
    const value = (f[sec] as Record<string, unknown>)[key];
    if (typeof value !== 'string' || value === '') continue;
    const p = pathIn(cwd, value);
    if (existsSync(p)) continue;
    registerSecret(value);
    registerSecret(value.trim());
    registerSecret(p);
  }
}

function exposureProblems(f: ConfigFile): string[] {
  const out: string[] = [];
  const api = f.subnet_api;
  if (!isLoopback(api.grpc_endpoint) && api.tls_ca_file === '' && !api.allow_insecure_remote) {
    out.push(
      `subnet_api.grpc_endpoint: got ${JSON.stringify(api.grpc_endpoint)}, expected a loopback address (127.0.0.1:PORT) unless the link uses TLS: the storage session's signed requests and the presigned URLs it returns would cross the network in plaintext (set subnet_api.tls_ca_file; subnet_api.allow_insecure_remote = true only on a private, trusted network)`,
    );
  }
  const ex = f.executor;
  const mtls = ex.tls_ca_file !== '' && ex.tls_cert_file !== '' && ex.tls_key_file !== '';
  if (!ex.builtin_noop_for_tests && !isLoopback(ex.endpoint) && !mtls && !ex.allow_insecure_remote) {
    out.push(
      `executor.endpoint: got ${JSON.stringify(ex.endpoint)}, expected a loopback address (127.0.0.1:PORT) unless the link uses mTLS: whatever listens there receives presigned URLs and decides what wcp signs on chain (set executor.tls_ca_file, executor.tls_cert_file and executor.tls_key_file for mTLS; executor.allow_insecure_remote = true only on a private, trusted network)`,
    );
  }
  // Bun's TLS cannot check a certificate against an IP address: the handshake would fail on every dial.
  if (ex.tls_ca_file !== '' && ex.tls_server_name === '' && isIP(hostOf(ex.endpoint)) !== 0) {
    out.push(
      `executor.tls_server_name: got nothing, expected the host name the executor's certificate carries, since executor.endpoint ${JSON.stringify(ex.endpoint)} is an IP address and TLS verifies host names (or name the endpoint by host name, e.g. localhost:7070)`,
    );
  }
  if (f.metrics.enabled && !isLoopback(f.metrics.listen) && !f.metrics.allow_non_loopback) {
    out.push(
      `metrics.listen: got ${JSON.stringify(f.metrics.listen)}, expected a loopback address (127.0.0.1:PORT): /status shows what the worker holds (put a reverse proxy with authentication in front, or set metrics.allow_non_loopback = true)`,
    );
  }
  return out;
}

/**
 * The embedded config is for a local development chain: it carries a public test key and the dev deployment's
 * addresses. Pointed at anything but this host it would sign with a key the whole world knows.
 */
function embeddedProblems(f: ConfigFile, source: string): string[] {
  if (!source.startsWith('embedded:')) return [];
  const remote = [f.ethereum.rpc_url, ...f.ethereum.rpc_urls, f.ethereum.ws_url].filter((u) => {
    if (u === '') return false;
    const host = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)/i.exec(u)?.[1] ?? '';
    return !isLoopback(`${host}:0`);
  });
  if (remote.length === 0) return [];
  return [
    `ethereum.rpc_url: got ${remote.map(displayUrl).join(', ')} with the embedded development config (${source}), expected a chain on this host (127.0.0.1, localhost, ::1): the embedded config signs with anvil's public test key and names the dev deployment's contracts; write a config file for this network (configs/example.toml is annotated) and pass --config FILE or WCP_CONFIG`,
  ];
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !(o instanceof Secret)) {
    for (const val of Object.values(o)) deepFreeze(val);
    Object.freeze(o);
  }
  return o;
}

/** A configured file path made absolute against `cwd`; '' stays '' (unset). */
function pathIn(cwd: string, p: string): string {
  return p === '' ? '' : isAbsolute(p) ? p : resolve(cwd, p);
}

/** Loads and validates the config (see the module doc); throws `CONFIG_INVALID` / `CONFIG_NOT_FOUND`. */
export function loadConfig(opts: LoadConfigOptions = {}): WcpConfig {
  return loadConfigWithFile(opts).config;
}

/** `loadConfig`, plus the validated file form (snake_case, defaults filled in) for printing it back. */
export function loadConfigWithFile(opts: LoadConfigOptions = {}): { config: WcpConfig; file: ConfigFile } {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const environment = env.ENVIRONMENT || 'local';
  const { text, source } = locate(opts, environment);
  let raw: Record<string, unknown>;
  try {
    raw = parseToml(text) as Record<string, unknown>;
  } catch (e) {
    const where = e instanceof TomlError ? `line ${e.line}, column ${e.column}: ` : '';
    throw new WcpError('CONFIG_INVALID', `config ${source} is not valid TOML`, {
      details: [`${where}${redact(e instanceof Error ? e.message.split('\n')[0]! : String(e))}`],
    });
  }
  registerKeyShapedStrings(raw);
  const fileEth = raw.ethereum as Record<string, unknown> | undefined;
  const fileKey = typeof fileEth?.wallet_private_key === 'string' ? fileEth.wallet_private_key.trim() : '';
  const envProblems = applyEnv(raw, env);
  const parsed = v.safeParse(ConfigFileSchema, raw);
  const problems = [...envProblems, ...(parsed.success ? [] : issueLines(parsed.issues))];
  if (!parsed.success || problems.length > 0) {
    throw new WcpError('CONFIG_INVALID', `config is invalid (${source})`, { details: problems });
  }
  const f = parsed.output as ConfigFile;
  registerUnknownPaths(f, cwd);
  const exposure = [
    ...urlProblems(f),
    ...exposureProblems(f),
    ...fileModeProblems(
      f,
      cwd,
      fileKey && !source.startsWith('embedded:') ? { path: source, key: fileKey } : undefined,
    ),
  ];
  if (exposure.length > 0) throw new WcpError('CONFIG_INVALID', `config is invalid (${source})`, { details: exposure });
  const reach = embeddedProblems(f, source);
  if (reach.length > 0) throw new WcpError('CONFIG_INVALID', `config is invalid (${source})`, { details: reach });
  const relations = relationProblems(f);
  if (relations.length > 0)
    throw new WcpError('CONFIG_INVALID', `config is invalid (${source})`, { details: relations });
  const { key, address } = resolveKey(f, cwd);
  const rpcUrls = [f.ethereum.rpc_url, ...f.ethereum.rpc_urls.filter((u) => u !== f.ethereum.rpc_url)];
  for (const u of [...rpcUrls, f.ethereum.ws_url]) if (u) registerUrlSecrets(u);
  const cfg: WcpConfig = {
    environment,
    source,
    ethereum: {
      rpcUrls,
      wsUrl: f.ethereum.ws_url,
      chainId: f.ethereum.chain_id,
      walletAddress: address,
      privateKey: key,
      subnetControlPlane: f.ethereum.subnet_control_plane_address,
      taskQueue: f.ethereum.task_queue_address,
      workflowEngine: f.ethereum.workflow_engine_address,
      multicall3: f.ethereum.multicall3_address,
      confirmations: f.ethereum.confirmations,
      requestTimeoutMs: f.ethereum.request_timeout,
    },
    subnetApi: {
      grpcEndpoint: f.subnet_api.grpc_endpoint,
      requestTimeoutMs: f.subnet_api.request_timeout,
      urlTtlMs: f.subnet_api.url_ttl,
      sessionTtlMs: f.subnet_api.session_ttl,
      tlsCaFile: pathIn(cwd, f.subnet_api.tls_ca_file),
      tlsCertFile: pathIn(cwd, f.subnet_api.tls_cert_file),
      tlsKeyFile: pathIn(cwd, f.subnet_api.tls_key_file),
      allowInsecureRemote: f.subnet_api.allow_insecure_remote,
    },
    scheduler: {
      pollIntervalMs: f.scheduler.poll_interval,
      pollBatch: f.scheduler.poll_batch,
      maxInflight: f.scheduler.max_inflight,
      queueName: f.scheduler.queue_name,
      heartbeatIntervalMs: f.scheduler.heartbeat_interval,
      mode: f.scheduler.mode,
      claimBatch: f.scheduler.claim_batch,
    },
    txPolicy: {
      gasBumpPercent: f.tx_policy.gas_bump_percent,
      bumpAfterMs: f.tx_policy.bump_after,
      bumpAfterBlocks: f.tx_policy.bump_after_blocks,
      maxInFlight: f.tx_policy.max_in_flight,
      maxFeePerGasGwei: f.tx_policy.max_fee_per_gas_gwei,
      feeCapMultiplier: f.tx_policy.fee_cap_multiplier,
      minPriorityFeeGwei: f.tx_policy.min_priority_fee_gwei,
      gasLimitMarginPercent: f.tx_policy.gas_limit_margin_percent,
      nonceTooLowAbortAfter: f.tx_policy.nonce_too_low_abort_after,
      refusedAbortAfter: f.tx_policy.refused_abort_after,
      maxLagBlocks: f.tx_policy.max_lag_blocks,
      receiptPollMs: f.tx_policy.receipt_poll,
      batch: f.tx_policy.batch,
    },
    executor: {
      endpoint: f.executor.endpoint,
      keepaliveIntervalMs: f.executor.keepalive_interval,
      keepaliveTimeoutMs: f.executor.keepalive_timeout,
      reconnectBaseMs: f.executor.reconnect_base,
      reconnectMaxMs: f.executor.reconnect_max,
      maxMessageBytes: f.executor.max_message_bytes,
      reofferLostTasks: f.executor.reoffer_lost_tasks,
      maxDispatchAttempts: f.executor.max_dispatch_attempts,
      allowInsecureRemote: f.executor.allow_insecure_remote,
      tlsCaFile: pathIn(cwd, f.executor.tls_ca_file),
      tlsCertFile: pathIn(cwd, f.executor.tls_cert_file),
      tlsKeyFile: pathIn(cwd, f.executor.tls_key_file),
      tlsServerName: f.executor.tls_server_name,
      builtinNoopForTests: f.executor.builtin_noop_for_tests,
      noopDelayMs: f.executor.noop_delay,
    },
    store: {
      path: isAbsolute(f.store.path) ? f.store.path : resolve(cwd, f.store.path),
      doneRetentionMs: f.store.done_retention,
    },
    reconciler: {
      windowMs: f.reconciler.window,
      periodMs: f.reconciler.period,
      followIntervalMs: f.reconciler.follow_interval,
      initialChunkBlocks: f.reconciler.initial_chunk_blocks,
      maxChunkBlocks: f.reconciler.max_chunk_blocks,
      backoffMaxMs: f.reconciler.backoff_max,
    },
    shutdown: { drainTimeoutMs: f.shutdown.drain_timeout },
    metrics: { enabled: f.metrics.enabled, listen: f.metrics.listen, allowNonLoopback: f.metrics.allow_non_loopback },
    log: { level: f.log.level, format: f.log.format },
  };
  return { config: deepFreeze(cfg), file: f };
}

/** The resolved config as plain data for printing: the key is replaced by `[REDACTED]`, URLs by `scheme://host:port/…`. */
export function redactedConfig(cfg: WcpConfig): Record<string, unknown> {
  return JSON.parse(
    JSON.stringify(cfg, (k, val) => {
      if (k === 'privateKey') return '[REDACTED]';
      if (typeof val === 'string' && /^[a-z][a-z0-9+.-]*:\/\//i.test(val)) return displayUrl(val);
      return typeof val === 'string' ? redact(val) : val;
    }),
  ) as Record<string, unknown>;
}
