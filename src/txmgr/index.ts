/**
 * The transaction manager: one wallet, one nonce lane, run in the supervisor thread next to the store.
 *
 * `createTxManager(...)` → `{ start, submit, simulate, inFlight, status, stop }`.
 * - `start()` checks the endpoints' chain id and re-syncs the lane with the chain (`resync.ts`): resolves records
 *   the chain has passed, re-sends pending ones with the same meaning and bumped fees, fills gaps with noop
 *   self-transfers, and sets the next nonce.
 * - `submit(req)` (`submit.ts`) simulates (optional) and estimates gas without a nonce, then, in call order,
 *   waits for room in the lane, reserves the next nonce durably, signs and broadcasts (`broadcaster.ts`).
 * - A background tick (every `receiptPollMs`) confirms, bumps, re-sends and detects reorgs (`confirmer.ts`),
 *   including reorgs deeper than `confirmations` that take back confirmed transactions (`refill`).
 *
 * State union: idle → starting → running → stopping → stopped; starting → failed if the chain cannot be read.
 * The private key lives only in the ethers Wallet inside this closure and is registered with the log redactor.
 */
import { Wallet } from 'ethers';
import type { RpcClient } from '../chain/transport.ts';
import { errorText, WcpError } from '../internal/errors.ts';
import { type Logger, registerSecret } from '../internal/logger.ts';
import type { Store } from '../store/store.ts';
import { createBroadcaster } from './broadcaster.ts';
import { createConfirmer } from './confirmer.ts';
import { createDelegator, type DelegateResult } from './delegate.ts';
import { recordAuthorization } from './authorization.ts';
import { createLaneState } from './lane-state.ts';
import { isOpen } from './nonce-lane.ts';
import { createRecorder } from './record.ts';
import { createResync } from './resync.ts';
import { createSubmitter } from './submit.ts';
import type {
  SimResult,
  SubmitResult,
  TxEvent,
  TxManagerState,
  TxManagerStatus,
  TxPolicy,
  TxRequest,
} from './types.ts';

export type * from './types.ts';
export type { DelegateResult } from './delegate.ts';

/** The policy comes from `txPolicy` (`options.ts`), compiled once with every component's options; every field but the clock is required. */
export interface TxManagerOptions {
  store: Store;
  /** The shared transport: reads go to the best endpoint, raw transactions to every endpoint. */
  rpc: RpcClient;
  chainId: number;
  privateKey: string;
  policy: TxPolicy;
  logger: Logger;
  onEvent: (ev: TxEvent) => void;
  /** Clock seam for tests. */
  now?: () => number;
}

export interface TxManager {
  start(): Promise<void>;
  submit(req: TxRequest): Promise<SubmitResult>;
  simulate(req: Pick<TxRequest, 'to' | 'data'>): Promise<SimResult>;
  /**
   * Delegates the wallet (EIP-7702, a type-4 transaction to itself) to `target`: the pinned batch executor (its
   * code and code hash checked first) or the zero address (revocation); nothing else is signed. Waits for the lane to
   * empty, holds new submits until the delegation is mined and the next nonce re-read, then checks the wallet's code.
   * See `delegate.ts`.
   */
  delegate(target: string, opts?: { drainTimeoutMs?: number }): Promise<DelegateResult>;
  /** The delegation under way (started by `delegate`, or resumed by the re-sync after a restart), if any. */
  delegation(): Promise<DelegateResult> | undefined;
  /** Lane slots sent but not yet mined (what `maxInFlight` bounds). */
  inFlight(): number;
  status(): TxManagerStatus;
  /** Stops the loops; pending txs stay in the store and are picked up by the next `start()`. */
  stop(): Promise<void>;
}

/** Reads of the pending nonce after a foreign transaction before the tick gives up. */
const RESYNC_ATTEMPTS = 5;
const RESYNC_RETRY_MS = 1_000;

export function createTxManager(o: TxManagerOptions): TxManager {
  registerSecret(o.privateKey);
  let wallet: Wallet;
  try {
    wallet = new Wallet(o.privateKey);
  } catch {
    // Never pass the cause on: it could quote the key.
    throw new WcpError('CONFIG_INVALID', 'the wallet private key is not a valid secp256k1 key');
  }
  const address = wallet.address;
  const { store, rpc, policy } = o;
  const now = o.now ?? Date.now;
  // The owner hands in a logger tagged for this component (e.g. `wcp:txmgr`): no second tag here.
  const log = o.logger;

  let state: TxManagerState = 'idle';
  let timer: ReturnType<typeof setTimeout> | undefined;
  let ticking: Promise<void> | undefined;

  function setState(next: TxManagerState) {
    if (next === state) return;
    log.info(`tx manager ${next}`, { from: state, address });
    state = next;
  }

  function notRunning(): WcpError | undefined {
    if (state === 'running') return undefined;
    return new WcpError(
      state === 'stopping' || state === 'stopped' ? 'SHUTDOWN' : 'INTERNAL',
      `the tx manager is ${state}`,
      {
        retryable: state !== 'failed',
      },
    );
  }

  // The delegator sees every lane event first (it waits for its own nonce's receipt).
  const lane = createLaneState({
    log,
    now,
    bestBlock: () => rpc.bestBlock(),
    onEvent: (ev) => {
      delegator.onEvent(ev);
      o.onEvent(ev);
    },
  });
  const broadcaster = createBroadcaster({
    store,
    rpc,
    policy,
    log: log.child('broadcaster'),
    now,
    chainId: o.chainId,
    address,
    signTx: (tx) => wallet.signTransaction(tx),
    emit: lane.emit,
    funds: lane.funds,
  });
  const recorder = createRecorder({ store, policy, log, address, broadcaster, lane });
  const sync = createResync({
    store,
    rpc,
    policy,
    log,
    now,
    address,
    broadcaster,
    recorder,
    lane,
    onForeign: (nonce, detail) => o.onEvent({ type: 'foreignTx', nonce, address, detail }),
    onOpenDelegation: (rec) => delegator.resume(rec),
  });
  const confirmer = createConfirmer({
    store,
    rpc,
    policy,
    log: log.child('confirmer'),
    now,
    address,
    broadcaster,
    slots: lane.slots,
    emit: lane.emit,
    onFinal: (s) => {
      lane.slots.delete(s.rec.nonce);
      lane.wake();
    },
    onRoom: lane.wake,
    onForeignNonce: async (nonce) => {
      o.onEvent({
        type: 'foreignTx',
        nonce,
        address,
        detail: `nonce ${nonce} was used by a transaction wcp did not send`,
      });
      // Claims wait for the lane to be in line again: retried a few times (bounded, inside this tick); should every
      // read fail, claims stay paused until the next foreign nonce or a restart re-syncs the lane.
      for (let i = 0; i < RESYNC_ATTEMPTS; i++) {
        if (await sync.syncNextNonce()) {
          o.onEvent({ type: 'laneResynced', address, nextNonce: lane.nextNonce });
          return;
        }
        await new Promise((r) => setTimeout(r, RESYNC_RETRY_MS));
      }
    },
    nextNonce: () => lane.nextNonce,
    refill: sync.refill,
  });
  const submitter = createSubmitter({ store, rpc, policy, log, now, address, broadcaster, recorder, lane, notRunning });
  const delegator = createDelegator({
    store,
    rpc,
    policy,
    log: log.child('delegate'),
    now,
    chainId: o.chainId,
    address,
    broadcaster,
    recorder,
    lane,
    signAuth: (req) => recordAuthorization(wallet.authorizeSync(req)),
    reserving: submitter.reserving,
    notRunning: () => {
      const e = notRunning();
      return e ? { code: e.code, message: e.message, retryable: e.retryable } : undefined;
    },
  });

  function schedule() {
    if (state !== 'running') return;
    timer = setTimeout(() => {
      ticking = confirmer
        .tick()
        .catch((e) => log.warn('tx manager tick failed; retrying', { error: errorText(e) }))
        .finally(() => {
          ticking = undefined;
          schedule();
        });
    }, policy.receiptPollMs);
  }

  return {
    async start() {
      if (state !== 'idle' && state !== 'stopped')
        throw new WcpError('INTERNAL', `cannot start the tx manager while ${state}`);
      setState('starting');
      try {
        await rpc.checkChainIds();
        await rpc.refreshHeads();
        await sync.resync();
      } catch (e) {
        setState('failed');
        throw e instanceof WcpError
          ? e
          : new WcpError('CHAIN_UNREACHABLE', `tx manager start failed: ${errorText(e)}`, { retryable: true });
      }
      setState('running');
      schedule();
    },
    submit: submitter.submit,
    simulate: submitter.simulate,
    delegate: delegator.delegate,
    delegation: delegator.current,
    inFlight: lane.pendingCount,
    status: () => ({
      state,
      address,
      nextNonce: lane.nextNonce,
      inFlight: lane.pendingCount(),
      fundsBlocked: lane.funds.blocked,
      headBlock: rpc.bestBlock(),
      endpoints: rpc.status(),
    }),
    async stop() {
      if (state === 'stopped' || state === 'idle') {
        state = 'stopped';
        return;
      }
      setState('stopping');
      if (timer) clearTimeout(timer);
      lane.wake();
      delegator.stop();
      await ticking;
      await submitter.idle();
      const open = [...lane.slots.values()].filter((s) => isOpen(s.rec)).length;
      if (open > 0) log.info('stopping with open lane slots; the next start re-syncs them', { open });
      lane.slots.clear();
      setState('stopped');
    },
  };
}
