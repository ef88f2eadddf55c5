/**
 * The supervisor: the main thread's owner of the store (and of the nonce lane), and the one place that turns
 * worker-thread messages into durable state. Worker threads (Piscina) run the Poller, the executor TaskStream
 * and the reconciler's scanning; each gets a MessagePort and speaks the typed messages of `messages.ts`.
 *
 * States: starting → running → draining → stopped, or → failed. `start()` does the startup checks
 * (`startup.ts`); then the nonce lane (re-synced from chain + store), the activity
 * manager (re-checks what it held), the executor link, the reconciler (claims wait for its startup scan), and
 * the poller, whose findings `discovery.ts` records. In `observe` mode only discovery runs: poller and event
 * follower, nothing is sent.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { createRpcTransport, type RpcClient } from '../chain/transport.ts';
import { redactedConfig, type WcpConfig } from '../config/load.ts';
import { errorText, WcpError } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import type { Metrics } from '../internal/metrics.ts';
import { registeredSecrets } from '../internal/redact.ts';
import type { ExecutorCommand, ExecutorEvent } from '../executor/messages.ts';
import { type ActivityManager, createActivityManager, type ExecutorLink } from '../lifecycle/manager.ts';
import { createNoopTestExecutor, type NoopTestExecutor } from './noop-test-executor.ts';
import { createClaimPauses } from '../lifecycle/pauses.ts';
import { MIN_LIFECYCLES } from '../doctor/chain-checks.ts';
import type { ReconcilerCommand, ReconcilerEvent, ReconcilerOptions } from '../reconciler/messages.ts';
import { buildInfo, buildVersion, runtimeName } from '../runtime/env.ts';
import { batchedPoster, unbatch } from '../internal/port-batch.ts';
import { createWorkerPool, type Piscina } from '../runtime/workers.ts';
import { idFromKey, LAST_SCAN_BLOCK, PREFIX } from '../store/keys.ts';
import { ScanCheckpointSchema } from '../store/records.ts';
import type { Store } from '../store/store.ts';
import { createTxManager, type TxManager } from '../txmgr/index.ts';
import type { PollerCommand, PollerEvent } from '../poller/messages.ts';
import type { OperatorProbes } from '../internal/http.ts';
import type { TxEvent } from '../txmgr/types.ts';
import { createDiscovery } from './discovery.ts';
import { startupChecks } from './startup.ts';
import { createProbes } from './probes.ts';
import { type ActivityHistory, createActivityHistory } from './activity-history.ts';
import { createSpendLedger } from './spend.ts';
import { statusView } from './status-view.ts';
import { createThreadMonitor } from './threads.ts';
import { debugMemoryEnabled } from '../internal/thread-stats.ts';
import type { WorkerBootData, WorkerTask } from './messages.ts';
import { compileOptions } from './options.ts';
import { decideBatchMode } from './batch-mode.ts';
import type { BatchMode } from '../chain/batch-executor.ts';

export type SupervisorState = 'starting' | 'running' | 'draining' | 'stopped' | 'failed';

export interface Supervisor {
  start(): Promise<void>;
  /** Graceful stop: stop intake, drain up to `shutdown.drain_timeout`, persist, release everything. */
  stop(reason: string): Promise<void>;
  state(): SupervisorState;
  /** What the operator endpoints answer (`/healthz`, `/readyz`, `/status`). */
  probes(): OperatorProbes;
  /** Resolves when the supervisor reaches `stopped` or `failed`. */
  done(): Promise<void>;
}

export interface SupervisorDeps {
  config: WcpConfig;
  logger: Logger;
  store: Store;
  metrics: Metrics;
  /** For tests: how long to keep retrying an unreachable chain at start (default: forever). */
  startupRetryMs?: number;
}

interface TaskHandle<C> {
  post(cmd: C): void;
  finished: Promise<void>;
}

export function createSupervisor(deps: SupervisorDeps): Supervisor {
  const { config, store, metrics } = deps;
  const options = compileOptions(config);
  const log = deps.logger;
  let state: SupervisorState = 'starting';
  /**
   * The pool threads: one for discovery (poller and reconciler side by side: both mostly wait on the RPC, and a
   * thread is a whole JS heap) and, when the executor link runs in a thread, one for it.
   */
  let pools: { discovery: Piscina; executor: Piscina | null } | null = null;
  let rpc: RpcClient | null = null;
  let poller: TaskHandle<PollerCommand> | null = null;
  let reconciler: TaskHandle<ReconcilerCommand> | null = null;
  let executorTask: TaskHandle<ExecutorCommand> | null = null;
  let noopExecutor: NoopTestExecutor | null = null;
  let txm: TxManager | null = null;
  let manager: ActivityManager | null = null;
  /**
   * Set while a transaction from our wallet that we did not send holds claims: from its sighting until the lane has
   * moved past the nonces the chain used (`laneResynced`). The last one seen stays in `/status`.
   */
  let foreignTx: string | undefined;
  let lastForeignTx: string | undefined;
  /** Every reason claims are paused; the manager's steps hold theirs, this file the ones only it knows. */
  const pauses = createClaimPauses({ log, metrics });
  /** Every thread's heap and event-loop lag (wcp_thread_* metrics; the debug memory hook). */
  const threads = createThreadMonitor({ metrics });
  let scanDone = false;
  const claiming = config.scheduler.mode === 'claim';
  /** How lifecycle calls reach the chain (decided at start; see batch-mode.ts). */
  let batch: BatchMode = claiming
    ? options.lifecycle.batch
    : { mode: 'per-call', reason: 'scheduler.mode = observe: nothing is sent' };
  let resolveDone!: () => void;
  const donePromise = new Promise<void>((r) => {
    resolveDone = r;
  });
  let stopping: Promise<void> | null = null;

  function setState(next: SupervisorState, fields: Record<string, unknown> = {}) {
    if (next === state) return;
    log.info(`supervisor ${next}`, { from: state, ...fields });
    state = next;
    metrics.state.set(next === 'running' ? 1 : 0);
    if (next === 'stopped' || next === 'failed') resolveDone();
  }

  function spawn<C, E>(kind: WorkerTask['kind'], options: unknown, onEvent: (ev: E) => void): TaskHandle<C> {
    const pool = kind === 'executor' ? pools?.executor : pools?.discovery;
    if (!pool) throw new WcpError('INTERNAL', `worker pool for ${kind} not started`);
    const { port1, port2 } = new MessageChannel();
    // The thread's first task carries its stats port (one reporter per thread).
    const stats = threads.taskFor(kind === 'executor' ? 'executor' : 'discovery');
    // A worker may post several events as one batch (`port-batch.ts`): each is handled on its own.
    port1.on('message', (m: unknown) =>
      unbatch(m, (ev) => {
        try {
          onEvent(ev as E);
        } catch (e) {
          log.error('handling a worker message failed', { kind, error: errorText(e) });
        }
      }),
    );
    const task = {
      kind,
      port: port2 as MessagePort,
      options,
      logLevel: config.log.level,
      secrets: registeredSecrets(),
      ...(stats ? { stats } : {}),
    } as WorkerTask;
    const finished = pool
      .run(task, { transferList: (stats ? [port2, stats.port] : [port2]) as never })
      .then(() => log.debug('worker task finished', { kind }))
      .catch((e: unknown) => {
        log.error('worker task crashed', { kind, error: errorText(e) });
        if (state === 'running') void stop(`${kind} worker crashed`);
      })
      .finally(() => port1.close());
    // The executor thread unbatches its commands (assigns and acks come several per turn under load); the discovery
    // thread's are few and go one by one.
    if (kind !== 'executor') return { post: (cmd: C) => port1.postMessage(cmd), finished };
    const batched = batchedPoster<C>(
      (m) => port1.postMessage(m),
      (cmd, e) =>
        log.error('posting to a worker failed', {
          kind,
          type: String((cmd as { type?: unknown }).type),
          error: errorText(e),
        }),
    );
    return { post: (cmd: C) => batched.post(cmd), finished };
  }

  /** What the receipts cost (the runway's rate) and the recent activities, for `/status` and the page. */
  const spend = createSpendLedger({ store, metrics, log, wallet: config.ethereum.walletAddress });
  let history: ActivityHistory | null = null;

  const discovery = createDiscovery({
    store,
    metrics,
    log,
    manager: () => manager ?? undefined,
    rescan: (ids) => reconciler?.post({ type: 'scanNow', reason: 'reorg', ids }),
    onStartupScanDone: () => {
      scanDone = true;
      manager?.setClaimsEnabled(true);
    },
  });
  const { onPollerEvent, onReconcilerEvent } = discovery;

  /**
   * Executor events held until the activity manager has started: the executor thread is started before the nonce
   * lane so that its dial and handshake overlap the lane's re-sync and the manager's start-up re-check, but what
   * the executor says (its Resync above all: records it no longer holds are re-dispatched or failed) is applied
   * only once the lane's open slots are restored and the held records re-checked, in arrival order, as when the
   * link was started after them. `null` once delivered.
   */
  let earlyExecutorEvents: ExecutorEvent[] | null = [];
  const emitExecutorEvent = (ev: ExecutorEvent) => {
    if (earlyExecutorEvents) earlyExecutorEvents.push(ev);
    else manager?.onExecutorEvent(ev);
  };

  function startExecutorLink(): ExecutorLink {
    if (config.executor.builtinNoopForTests) {
      log.warn('using the BUILT-IN NO-OP EXECUTOR FOR TESTS ONLY: activities are not really executed');
      noopExecutor = createNoopTestExecutor({
        capacity: config.scheduler.maxInflight,
        delayMs: config.executor.noopDelayMs,
        emit: emitExecutorEvent,
      });
      return noopExecutor;
    }
    executorTask ??= spawn<ExecutorCommand, ExecutorEvent>('executor', options.executor, emitExecutorEvent);
    const t = executorTask;
    return {
      assign: (task) => t.post({ type: 'assign', task }),
      cancel: (id, reason) => t.post({ type: 'cancel', activity_id: id, reason }),
      ackCompletion: (ack) => t.post({ type: 'ackCompletion', ...ack }),
      drain: () => t.post({ type: 'drain' }),
    };
  }

  function reconcilerOptions(): ReconcilerOptions {
    const cp = store.get(LAST_SCAN_BLOCK, ScanCheckpointSchema);
    const localIds = [...store.scan(PREFIX.inflight), ...store.scan(PREFIX.claimJob)].map((e) => idFromKey(e.key));
    return options.reconciler({
      localIds,
      ...(cp
        ? { checkpoint: { block_number: cp.block_number, ...(cp.block_hash ? { block_hash: cp.block_hash } : {}) } }
        : {}),
    });
  }

  async function destroyPools(): Promise<void> {
    await Promise.all([pools?.discovery.destroy(), pools?.executor?.destroy()].map((p) => p?.catch(() => {})));
  }

  async function start(): Promise<void> {
    const info = buildInfo();
    metrics.buildInfo.set(
      { version: info.version, commit: info.commit, runtime: `${info.runtime} ${info.runtimeVersion}` },
      1,
    );
    log.info('wcp starting', {
      version: buildVersion(),
      runtime: runtimeName(),
      runtime_version: process.versions.bun ?? process.versions.node,
      config: redactedConfig(config),
    });
    rpc = createRpcTransport(options.rpc, { logger: log.child('rpc') });
    const useExecutorThread = claiming && !config.executor.builtinNoopForTests;
    // The threads boot and load their components (workerData.preload) while the chain is asked whether we may
    // work at all.
    pools = {
      discovery: createWorkerPool({
        threads: 1,
        tasksPerThread: 2,
        workerData: { preload: ['poller', 'reconciler'], secrets: registeredSecrets() } satisfies WorkerBootData,
      }),
      executor: useExecutorThread
        ? createWorkerPool({
            threads: 1,
            workerData: { preload: ['executor'], secrets: registeredSecrets() } satisfies WorkerBootData,
          })
        : null,
    };
    try {
      await startupChecks(rpc, {
        config,
        log,
        ...(deps.startupRetryMs === undefined ? {} : { retryMs: deps.startupRetryMs }),
        stillStarting: () => state === 'starting',
      });
    } catch (e) {
      setState('failed', { error: errorText(e) });
      await destroyPools();
      throw e;
    }
    if (state !== 'starting') return;
    await spend.load();
    history = createActivityHistory({ store, executor: config.executor.endpoint });
    probes.start();
    // Discovery and the executor link need nothing of the lane or the lifecycle: they start now, so their threads
    // load their code, dial and poll while the lane re-syncs. Claims still wait for the reconciler's startup scan,
    // which starts only after the activity manager has re-checked what it held (below).
    poller = spawn<PollerCommand, PollerEvent>('poller', options.poller, onPollerEvent);
    if (useExecutorThread) startExecutorLink();
    if (claiming) {
      txm = createTxManager({
        store,
        rpc,
        logger: log.child('txmgr'),
        onEvent: onTxEvent,
        chainId: config.ethereum.chainId,
        privateKey: config.ethereum.privateKey.reveal(),
        policy: options.txPolicy,
      });
      await txm.start();
      // After the lane's re-sync (a delegation open from before a restart is resumed by it), before claims.
      ({ batch } = await decideBatchMode({
        setting: config.txPolicy.batch,
        rpc,
        txm,
        wallet: config.ethereum.walletAddress,
        chainId: config.ethereum.chainId,
        log: log.child('batch'),
      }));
      const executor = startExecutorLink();
      manager = createActivityManager({
        options: { ...options.lifecycle, batch },
        store,
        txm,
        rpc,
        executor,
        logger: log.child('lifecycle'),
        metrics,
        pauses,
      });
      await manager.start();
      const early = earlyExecutorEvents ?? [];
      earlyExecutorEvents = null;
      for (const ev of early) manager.onExecutorEvent(ev);
      noopExecutor?.start();
    }
    earlyExecutorEvents = null;
    reconciler = spawn<ReconcilerCommand, ReconcilerEvent>('reconciler', reconcilerOptions(), onReconcilerEvent);
    setState('running', { wallet: config.ethereum.walletAddress, queue: config.scheduler.queueName });
  }

  async function stop(reason: string): Promise<void> {
    if (stopping) return stopping;
    stopping = (async () => {
      if (state === 'stopped' || state === 'failed') return;
      setState('draining', { reason });
      // 1. Stop intake: no more discovery, no more claims or dispatches.
      poller?.post({ type: 'stop' });
      // 2. Drain: running tasks get the grace time to finish and be written on chain (heartbeats go on).
      if (manager) {
        const unfinished = await manager.drain(config.shutdown.drainTimeoutMs);
        if (unfinished.length) {
          log.warn('stopping with activities not finished; they stay recorded and resume after restart', {
            count: unfinished.length,
            activities: unfinished.join(','),
          });
        } else log.info('drained: nothing in flight');
        await manager.stop();
      }
      reconciler?.post({ type: 'stop' });
      executorTask?.post({ type: 'stop' });
      noopExecutor?.stop();
      const workers = Promise.all([poller?.finished, reconciler?.finished, executorTask?.finished]);
      const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5000).unref());
      if ((await Promise.race([workers.then(() => 'ok' as const), timeout])) === 'timeout') {
        log.warn('workers did not stop in 5 s; terminating them');
      }
      await txm?.stop();
      probes.stop();
      history?.stop();
      // 3. Persist: every write so far is flushed before the store closes.
      await store.flushed();
      await destroyPools();
      threads.stop();
      setState('stopped');
    })();
    return stopping;
  }

  /** Transaction outcomes: to the lifecycle, receipts to the spend ledger, a foreign transaction pauses claims. */
  function onTxEvent(ev: TxEvent): void {
    // The lifecycle gets every event whatever a bookkeeper does with it: a throwing one must not drop it.
    if (ev.type === 'confirmed')
      try {
        spend.record(ev);
      } catch (e) {
        log.error('recording a receipt in the spend ledger failed', { nonce: ev.nonce, error: errorText(e) });
      }
    if (ev.type === 'foreignTx') {
      metrics.foreignTxs.inc();
      if (foreignTx === undefined) {
        log.error(
          'a transaction from this wallet was not sent by this wcp: claims paused until the lane is re-synced',
          {
            wallet: ev.address,
            nonce: ev.nonce,
            detail: ev.detail,
            what_to_do:
              'if the same key runs elsewhere (another host or process), every activity would be claimed and run twice: stop the other one. Claims resume once the lane has moved past the nonces used; held work keeps being heartbeated and finished meanwhile',
          },
        );
      }
      foreignTx = ev.detail;
      lastForeignTx = ev.detail;
      pauses.set('foreign_transaction', true, { nonce: ev.nonce, detail: ev.detail });
    }
    if (ev.type === 'laneResynced') {
      if (foreignTx !== undefined) log.info('lane re-synced after a foreign transaction', { next_nonce: ev.nextNonce });
      foreignTx = undefined;
      pauses.clear('foreign_transaction');
      manager?.kick();
    }
    if (ev.type === 'insufficientFunds')
      pauses.set('wallet_unfunded', true, { nonce: ev.nonce, detail: ev.message }, 'lane');
    if (ev.type === 'fundsRestored') pauses.set('wallet_unfunded', false, {}, 'lane');
    manager?.onTxEvent(ev);
  }

  const probes = createProbes({
    config,
    store,
    rpc: () => rpc ?? undefined,
    manager: () => manager ?? undefined,
    txm: () => txm ?? undefined,
    state: () => state,
    batch: () => batch,
    metrics,
    log,
    spend,
    onWatch: (w) => {
      const wallet = config.ethereum.walletAddress;
      if (w.active === true) pauses.clear('worker_inactive');
      if (w.active === false)
        pauses.set('worker_inactive', true, { wallet, detail: 'isWorkerActive is false on chain' }, 'watch');
      if (w.funded)
        pauses.set(
          'wallet_unfunded',
          !w.funded.ok,
          { wallet, balance_eth: w.funded.balanceEth, lifecycles: w.funded.lifecycles, need: Number(MIN_LIFECYCLES) },
          'balance',
        );
      if (w.queueKnown !== undefined)
        pauses.set(
          'unknown_queue',
          !w.queueKnown,
          {
            queue: config.scheduler.queueName,
            task_queue: config.ethereum.taskQueue,
            fix: 'set scheduler.queue_name to the queue the subnet enqueues on (names are case-sensitive)',
          },
          'watch',
        );
      if (w.active || w.funded?.ok || w.queueKnown) manager?.kick();
    },
    extraChecks: () => [
      foreignTx === undefined
        ? { name: 'wallet_exclusive', ok: true, detail: 'no transaction from this wallet that wcp did not send' }
        : {
            name: 'wallet_exclusive',
            ok: false,
            detail: foreignTx,
            fix: 'the key is used elsewhere: stop the other sender; claims resume once the lane is re-synced',
          },
    ],
  });

  return {
    start,
    stop,
    state: () => state,
    done: () => donePromise,
    probes: () => ({
      health: probes.health,
      ready: probes.ready,
      status: async () => {
        const base = await probes.status();
        const view = history
          ? statusView(
              { config, store, history, discovery: discovery.view },
              base,
              await probes.ready(),
              pauses.details(),
            )
          : {};
        return {
          ...base,
          ...view,
          claims_paused: pauses.list(),
          claims_paused_detail: pauses.details(),
          ...(lastForeignTx === undefined ? {} : { foreign_transaction: lastForeignTx }),
          startup_scan_done: scanDone,
        };
      },
      ...(debugMemoryEnabled() ? { debugMemory: (snapshot?: string) => threads.debugMemory(snapshot) } : {}),
    }),
  };
}
