/**
 * The reconciler's long-lived Piscina task body: `runReconcilerWorker({ port, options })`.
 *
 * States (`status().state`): 'starting' → 'scanning' (startup scan) → 'following' ⇄ 'backoff' → 'stopped'.
 *   starting   transport and scanner built; nothing read yet
 *   scanning   the startup scan over the whole window; retried with backoff until it succeeds (or stop)
 *   following  follower steps every `followIntervalMs` (back to back while behind), a window rescan every
 *              `periodMs`, a manual rescan on `scanNow`
 *   backoff    an RPC failure: wait (the shared backoff from `backoffMinMs` up to `backoffMaxMs`, at least half
 *              of its ceiling), keep all state, then continue from the last fully ingested block: nothing is skipped
 *   stopped    after `stop`: the current operation finishes, `stopped` is posted, the task resolves
 *
 * Hand-off from scan to follow: the startup scan pins head H and covers [windowStart, H]. The follower starts at
 * `checkpoint + 1` when the checkpoint is inside the window and its hash still matches, else at windowStart
 * (the scan's first block), so every ActivityEnqueued of the window — and all of those mined while the scan
 * ran (blocks > H) — is ingested. A checkpoint whose hash changed while we were down is reported as a reorg
 * from `checkpoint - reorgDepth + 1` (bounded by the window) and re-ingested from there.
 */
import type { MessagePort } from 'node:worker_threads';
import { getHeader } from '../chain/reads.ts';
import { createRpcTransport, type RpcTransport } from '../chain/transport.ts';
import { backoffCeilingMs, backoffDelayMs } from '../internal/backoff.ts';
import { errorText, toWire } from '../internal/errors.ts';
import { createLogger, type Logger } from '../internal/logger.ts';
import { createFollower, type Follower } from './follower.ts';
import { createLogFetcher } from './logs.ts';
import type { ReconcilerCommand, ReconcilerEvent, ReconcilerOptions, ScanReason } from './messages.ts';
import { logFetcherOptions } from './options.ts';
import { createScanner } from './scanner.ts';

export type ReconcilerState = 'starting' | 'scanning' | 'following' | 'backoff' | 'stopped';

export interface ReconcilerDeps {
  /** Transport seam (tests); by default the thread builds its own from `options.rpc`. */
  rpc?: RpcTransport;
  logger?: Logger;
  /** Called on every state change (tests, metrics). */
  onState?: (s: ReconcilerState) => void;
}

export interface RunReconcilerInput {
  port: MessagePort;
  options: ReconcilerOptions;
}

export async function runReconcilerWorker(input: RunReconcilerInput, deps: ReconcilerDeps = {}): Promise<void> {
  const { port, options: o } = input;
  const log = deps.logger ?? createLogger('reconciler');
  const rpc = deps.rpc ?? createRpcTransport(o.rpc, { logger: log.child('rpc') });
  const reorgDepth = o.reorgDepth;
  // Half of each wait is fixed, half jittered: an outage is retried at a steady pace, never in a burst.
  const halfBackoff = { baseMs: o.backoffMinMs / 2, maxMs: o.backoffMaxMs / 2 };
  const logs = createLogFetcher({
    rpc,
    ...logFetcherOptions(o),
    onAdapt: (a) => log.debug('eth_getLogs range adapted', { from_blocks: a.from, to_blocks: a.to, reason: a.reason }),
  });
  const scanner = createScanner({
    rpc,
    logs,
    taskQueue: o.taskQueue,
    workflowEngine: o.workflowEngine,
    multicall3: o.multicall3,
    wallet: o.wallet,
    windowS: o.windowS,
    reorgDepth,
    includeHeartbeats: o.includeHeartbeats,
  });

  let state: ReconcilerState = 'starting';
  const setState = (s: ReconcilerState) => {
    if (s === state) return;
    log.info('reconciler state', { from: state, to: s });
    state = s;
    deps.onState?.(s);
  };
  const post = (m: ReconcilerEvent) => port.postMessage(m);

  let stopping = false;
  let manual: { ids: string[] } | undefined;
  let wake: (() => void) | undefined;
  const onMessage = (cmd: ReconcilerCommand) => {
    if (cmd?.type === 'stop') stopping = true;
    else if (cmd?.type === 'scanNow') manual = { ids: [...(manual?.ids ?? []), ...(cmd.ids ?? [])] };
    else return;
    wake?.();
  };
  port.on('message', onMessage);
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (stopping) return resolve();
      const done = () => {
        clearTimeout(t);
        wake = undefined;
        resolve();
      };
      const t = setTimeout(done, ms);
      wake = done;
    });

  let failures = 0;
  let lastErrorText = '';
  async function backoff(e: unknown, what: string) {
    failures++;
    const text = errorText(e);
    // One error message per outage (and when the error changes), not one per retry.
    if (failures === 1 || text !== lastErrorText) post({ type: 'error', error: { ...toWire(e), retryable: true } });
    lastErrorText = text;
    const wait = Math.round(backoffCeilingMs(halfBackoff, failures) + backoffDelayMs(halfBackoff, failures));
    log.warn(`${what} failed; backing off`, { error: text, failures, wait_ms: wait });
    setState('backoff');
    await sleep(wait);
  }
  const recovered = () => {
    if (failures > 0) log.info('RPC recovered', { failures });
    failures = 0;
    lastErrorText = '';
  };

  async function scan(reason: ScanReason, ids: string[]) {
    const started = Date.now();
    const r = await scanner.scan({ reason, ids });
    post({ type: 'facts', facts: r.facts, reason, window: r.window });
    log.info('scan done', {
      reason,
      facts: r.facts.length,
      settled_not_read: r.skipped,
      from_block: r.window.fromBlock,
      to_block: r.window.toBlock,
      duration_ms: Date.now() - started,
    });
    return r;
  }

  try {
    // ---------------------------------------------------------------- startup scan
    setState('scanning');
    let follower: Follower | undefined;
    let startup: { fromBlock: number; head: number } | undefined;
    while (!stopping && !follower) {
      try {
        if (!startup) {
          const r = await scan('startup', o.localIds);
          post({ type: 'startupScanDone', toBlock: r.window.toBlock });
          startup = { fromBlock: r.window.fromBlock, head: r.head.number };
        }
        follower = await makeFollower(startup.fromBlock, startup.head);
        recovered();
      } catch (e) {
        await backoff(e, 'startup scan');
        if (!stopping) setState('scanning');
      }
    }

    // ---------------------------------------------------------------- follow + periodic rescans
    let nextPeriodic = Date.now() + o.periodMs;
    while (!stopping && follower) {
      setState('following');
      try {
        if (manual) {
          const ids = manual.ids;
          manual = undefined;
          await scan('manual', ids);
          nextPeriodic = Date.now() + o.periodMs;
        } else if (Date.now() >= nextPeriodic) {
          await scan('periodic', []);
          nextPeriodic = Date.now() + o.periodMs;
        }
        const s = await follower.step();
        recovered();
        if (s.reorg) {
          log.warn('reorg detected', { fork_block: s.reorg.forkBlock, detail: s.reorg.detail });
          post({ type: 'reorg', forkBlock: s.reorg.forkBlock, detail: s.reorg.detail });
        }
        if (s.jobs.length > 0) post({ type: 'enqueued', jobs: s.jobs });
        if (s.checkpoint) post({ type: 'checkpoint', ...s.checkpoint });
        if (s.caughtUp) await sleep(o.followIntervalMs);
      } catch (e) {
        await backoff(e, 'follow step');
      }
    }
  } finally {
    port.off('message', onMessage);
    setState('stopped');
    post({ type: 'stopped' });
  }

  async function makeFollower(windowStart: number, head: number): Promise<Follower> {
    const base = {
      rpc,
      logs,
      taskQueue: o.taskQueue,
      multicall3: o.multicall3,
      queueName: o.queueName,
      maxBlocksPerStep: o.followMaxBlocks,
      reorgDepth,
      filterClaimable: o.filterClaimable,
    };
    const cp = o.checkpoint;
    if (cp && cp.block_number >= windowStart - 1 && cp.block_number <= head) {
      const h = await getHeader(rpc, cp.block_number);
      if (!cp.block_hash || h.hash === cp.block_hash.toLowerCase()) {
        log.info('following from the checkpoint', { block_number: cp.block_number + 1 });
        return createFollower({ ...base, startBlock: cp.block_number + 1, startParentHash: h.hash });
      }
      const fork = Math.max(windowStart, cp.block_number - reorgDepth + 1);
      const detail = `checkpoint block ${cp.block_number} changed hash while wcp was down; re-ingesting from ${fork}`;
      log.warn('reorg detected at startup', { fork_block: fork, detail });
      post({ type: 'reorg', forkBlock: fork, detail });
      return createFollower({ ...base, startBlock: fork });
    }
    log.info('following from the window start', { block_number: windowStart });
    return createFollower({ ...base, startBlock: windowStart });
  }
}
