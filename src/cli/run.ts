/**
 * `wcp run`: signal handlers → config → store directory and lock → store → metrics → supervisor. The first
 * SIGINT/SIGTERM/SIGHUP drains gracefully (exit 0), or, before the supervisor exists, stops before anything started
 * (exit 0); a second one forces an immediate exit (130) — LMDB's commits are atomic, so even a forced exit leaves
 * a consistent store.
 */
import { loadConfig } from '../config/load.ts';
import { errorText, WcpError } from '../internal/errors.ts';
import { ExitCode } from '../internal/exit-codes.ts';
import { takeEarlySignal } from '../internal/early-signals.ts';
import { createLogger, type Logger } from '../internal/logger.ts';
import { type OperatorHttp, serveOperatorHttp } from '../internal/http.ts';
import { createMetrics } from '../internal/metrics.ts';
import { ensureWritableTmpdir } from '../runtime/env.ts';
import { acquireStoreLock } from '../store/lock.ts';
import { ensureStoreDir, openStore, type Store } from '../store/store.ts';
import { createSupervisor, type Supervisor } from '../supervisor/supervisor.ts';
import { exitCodeFor, printError } from './exit.ts';

/** Files wcp creates from here on (store, locks, keys) are owner-only: 0600 files, 0700 directories. */
function restrictNewFiles(): void {
  try {
    process.umask(0o077);
  } catch {
    // runtimes without umask (none of the tested ones): the store still chmods its own files
  }
}

export async function runDaemon(opts: { configPath?: string }): Promise<number> {
  // The daemon's signal handlers first, so that no signal falls between the early handlers and these.
  let supervisor: Supervisor | undefined;
  let logger: Logger | undefined;
  let drainTimeoutMs = 0;
  let stopBeforeStart: NodeJS.Signals | undefined;
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      if (!supervisor) {
        stopBeforeStart = sig;
        return;
      }
      logger?.info('signal received: draining', { signal: sig, drain_timeout_ms: drainTimeoutMs });
      void supervisor.stop(`signal ${sig}`);
    } else {
      logger?.warn('second signal: forcing exit', { signal: sig });
      process.exit(ExitCode.Forced);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // SIGHUP (the terminal went away, or an operator's `kill -HUP`) drains like SIGTERM: wcp has no config reload.
  process.on('SIGHUP', onSignal);
  const early = takeEarlySignal();
  if (early) onSignal(early);
  try {
    return await startAndRun(opts, {
      stopRequested: () => stopBeforeStart,
      signalled: () => signals > 0,
      started: (s, l, drainMs) => {
        supervisor = s;
        logger = l;
        drainTimeoutMs = drainMs;
      },
      logger: (l) => {
        logger = l;
      },
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
  }
}

interface StartHooks {
  /** The signal that asked wcp to stop before its supervisor existed. */
  stopRequested(): NodeJS.Signals | undefined;
  /** Whether any signal has arrived. */
  signalled(): boolean;
  logger(l: Logger): void;
  started(s: Supervisor, l: Logger, drainTimeoutMs: number): void;
}

/** A signal before the supervisor exists: nothing was claimed or started, so stopping is exit 0. */
function stoppedEarly(logger: Logger | undefined, sig: NodeJS.Signals): number {
  logger?.info('signal received while starting: stopping before anything started', { signal: sig });
  return ExitCode.Ok;
}

async function startAndRun(opts: { configPath?: string }, hooks: StartHooks): Promise<number> {
  let sig = hooks.stopRequested();
  if (sig) return stoppedEarly(undefined, sig);
  const config = loadConfig(opts.configPath ? { path: opts.configPath } : {});
  if (config.log.format !== 'auto') process.env.WCP_LOG_FORMAT = config.log.format;
  process.env.WCP_LOG_LEVEL = config.log.level;
  const logger = createLogger('wcp', { level: config.log.level });
  hooks.logger(logger);
  ensureWritableTmpdir();
  restrictNewFiles();
  sig = hooks.stopRequested();
  if (sig) return stoppedEarly(logger, sig);
  ensureStoreDir(config.store.path);
  const lock = acquireStoreLock(config.store.path);
  if (lock.uncleanStop) {
    logger.warn(
      'the last wcp on this store did not stop cleanly (killed, crashed or power lost); its store is checked page by page before use',
      {
        lock: lock.path,
      },
    );
  }
  const metrics = createMetrics();
  let store: Store;
  try {
    store = openStore({
      path: config.store.path,
      logger: logger.child('store'),
      onQuarantine: () => metrics.quarantined.inc(),
    });
  } catch (e) {
    lock.release();
    throw e;
  }
  let http: OperatorHttp | null = null;
  try {
    // One turn of the event loop: a signal that arrived while the modules loaded and the store opened (all
    // synchronous) is delivered now, and stops wcp before the supervisor starts anything.
    await new Promise((r) => setTimeout(r, 0));
    sig = hooks.stopRequested();
    if (sig) return stoppedEarly(logger, sig);
    const supervisor = createSupervisor({ config, logger, store, metrics });
    hooks.started(supervisor, logger, config.shutdown.drainTimeoutMs);
    try {
      if (config.metrics.enabled) {
        // Without /healthz and /readyz nothing can supervise the daemon: a listener that cannot start ends it.
        try {
          http = await serveOperatorHttp(metrics, config.metrics.listen, logger);
        } catch (e) {
          throw new WcpError(
            'LISTEN_FAILED',
            `metrics.listen ${config.metrics.listen} cannot be served: ${errorText(e)}`,
            {
              details: [
                'another process holds the port, or the address is not one of this host: stop the other process, or set metrics.listen (WCP__METRICS__LISTEN) to a free address',
              ],
              cause: e,
            },
          );
        }
        http.setProbes(supervisor.probes());
      }
      if (hooks.signalled()) {
        // Signalled while the endpoint started: the supervisor was asked to stop before starting anything.
        await supervisor.stop('signal before start');
        return ExitCode.Ok;
      }
      await supervisor.start();
      await supervisor.done();
      return supervisor.state() === 'stopped' ? ExitCode.Ok : ExitCode.Failure;
    } catch (e) {
      printError(e);
      await supervisor.stop('startup failed').catch(() => {});
      return exitCodeFor(e);
    }
  } finally {
    http?.close();
    await store.close().catch(() => {});
    lock.release();
  }
}
