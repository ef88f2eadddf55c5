/**
 * `wcp run`: config → store lock → store → metrics → supervisor, plus signal handling. The first SIGINT/SIGTERM/SIGHUP drains
 * gracefully (exit 0); a second one forces an immediate exit (130) — LMDB's commits are atomic, so even a forced
 * exit leaves a consistent store.
 */
import { loadConfig } from '../config/load.ts';
import { errorText } from '../internal/errors.ts';
import { ExitCode } from '../internal/exit-codes.ts';
import { createLogger } from '../internal/logger.ts';
import { type OperatorHttp, serveOperatorHttp } from '../internal/http.ts';
import { createMetrics } from '../internal/metrics.ts';
import { ensureWritableTmpdir } from '../runtime/env.ts';
import { acquireStoreLock } from '../store/lock.ts';
import { ensureStoreDir, openStore, type Store } from '../store/store.ts';
import { createSupervisor } from '../supervisor/supervisor.ts';
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
  const config = loadConfig(opts.configPath ? { path: opts.configPath } : {});
  if (config.log.format !== 'auto') process.env.WCP_LOG_FORMAT = config.log.format;
  process.env.WCP_LOG_LEVEL = config.log.level;
  const logger = createLogger('wcp', { level: config.log.level });
  ensureWritableTmpdir();
  restrictNewFiles();
  ensureStoreDir(config.store.path);
  const lock = acquireStoreLock(config.store.path);
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
  const supervisor = createSupervisor({ config, logger, store, metrics });

  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      logger.info('signal received: draining', { signal: sig, drain_timeout_ms: config.shutdown.drainTimeoutMs });
      void supervisor.stop(`signal ${sig}`);
    } else {
      logger.warn('second signal: forcing exit', { signal: sig });
      process.exit(ExitCode.Forced);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // SIGHUP (the terminal went away, or an operator's `kill -HUP`) drains like SIGTERM: wcp has no config reload.
  process.on('SIGHUP', onSignal);
  try {
    if (config.metrics.enabled) {
      try {
        http = await serveOperatorHttp(metrics, config.metrics.listen, logger);
        http.setProbes(supervisor.probes());
      } catch (e) {
        logger.warn('metrics endpoint not started', { listen: config.metrics.listen, error: errorText(e) });
      }
    }
    await supervisor.start();
    await supervisor.done();
    return supervisor.state() === 'stopped' ? ExitCode.Ok : ExitCode.Failure;
  } catch (e) {
    printError(e);
    await supervisor.stop('startup failed').catch(() => {});
    return exitCodeFor(e);
  } finally {
    http?.close();
    await store.close().catch(() => {});
    lock.release();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
  }
}
