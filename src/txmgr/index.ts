/**
 * The transaction manager: one wallet, one nonce lane, run in the supervisor thread next to the store.
 *
 * `createTxManager(...)` → `{ start, submit, simulate, inFlight, status, stop }`.
 * - `start()` checks the endpoints' chain id and re-syncs the lane with the chain (see `nonce-lane.ts`
 *   `planResync`): resolves records the chain has passed, re-sends pending ones with the same meaning and bumped
 *   fees, fills gaps with noop self-transfers, and sets the next nonce.
 * - `submit(req)` simulates (optional) and estimates gas WITHOUT a nonce, then, in order, waits for room in the
 *   lane (≤ maxInFlight pending), reserves the next nonce durably, signs and broadcasts.
 * - A background tick (every `receiptPollMs`) confirms, bumps, re-sends and detects reorgs (`confirmer.ts`),
 *   including reorgs deeper than `confirmations` that take back confirmed transactions (`refill`).
 *
 * State union: idle → starting → running → stopping → stopped; starting → failed if the chain cannot be read.
 * The private key lives only in the ethers Wallet inside this closure and is registered with the log redactor.
 */
import { Wallet } from 'ethers';
import { errorText, WcpError, type WireError } from '../internal/errors.ts';
import { type Logger, registerSecret } from '../internal/logger.ts';
import { laneKey } from '../store/keys.ts';
import { type LaneTx, LaneTxSchema } from '../store/records.ts';
import type { Store } from '../store/store.ts';
import { createBroadcaster, feesOf } from './broadcaster.ts';
import { classifyRpcError } from './classify.ts';
import { createConfirmer, findReceipt } from './confirmer.ts';
import { decodeRevertError } from './decode.ts';
import { type FeeSuggestion, gasWithMargin, initialFees } from './fees.ts';
import { isOpen, isPending, loadLane, persistLane, persistReservation, planResync, readNonceLast, type Slot } from './nonce-lane.ts';
import { createRpcPool } from './rpc-pool.ts';
import {
  resolvePolicy,
  type SimResult,
  type SubmitResult,
  type TxEvent,
  type TxManagerState,
  type TxManagerStatus,
  type TxPolicy,
  type TxRequest,
} from './types.ts';

export * from './types.ts';
export { classifyRpcError, shouldRetry } from './classify.ts';
export { decodeRevertData, decodeRevertError } from './decode.ts';

export interface TxManagerOptions {
  store: Store;
  rpcUrls: string[];
  chainId: number;
  privateKey: string;
  policy?: Partial<TxPolicy>;
  logger: Logger;
  onEvent: (ev: TxEvent) => void;
  now?: () => number;
}

export interface TxManager {
  start(): Promise<void>;
  submit(req: TxRequest): Promise<SubmitResult>;
  simulate(req: Pick<TxRequest, 'to' | 'data'>): Promise<SimResult>;
  /** Lane slots sent but not yet mined (what `maxInFlight` bounds). */
  inFlight(): number;
  status(): TxManagerStatus;
  /** Stops the loops; pending txs stay in the store and are picked up by the next `start()`. */
  stop(): Promise<void>;
}

const HEX = /^0x[0-9a-fA-F]*$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const NOOP_GAS = 21_000n;

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
  const policy = resolvePolicy(o.policy);
  const now = o.now ?? Date.now;
  const log = o.logger.child('txmgr');
  const store = o.store;
  const pool = createRpcPool({
    urls: o.rpcUrls,
    chainId: o.chainId,
    logger: log.child('rpc'),
    timeoutMs: policy.rpcTimeoutMs,
    maxLagBlocks: policy.maxLagBlocks,
    backoffMs: policy.endpointBackoffMs,
    backoffMaxMs: policy.endpointBackoffMaxMs,
    now,
  });

  let state: TxManagerState = 'idle';
  const slots = new Map<number, Slot>();
  let nextNonce = 0;
  const funds = { blocked: false, nonce: -1 };
  let waiters: Array<() => void> = [];
  let lock: Promise<unknown> = Promise.resolve();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let ticking: Promise<void> | undefined;

  function setState(next: TxManagerState) {
    if (next === state) return;
    log.info(`tx manager ${next}`, { from: state, address });
    state = next;
  }

  function emit(ev: TxEvent) {
    try {
      o.onEvent(ev);
    } catch (e) {
      log.error('onEvent handler threw; event dropped', { type: ev.type, error: errorText(e) });
    }
  }

  function wake() {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  }

  const pendingCount = () => {
    let n = 0;
    for (const s of slots.values()) if (isPending(s.rec)) n++;
    return n;
  };

  const broadcaster = createBroadcaster({
    store,
    pool,
    policy,
    log: log.child('broadcaster'),
    now,
    chainId: o.chainId,
    address,
    signTx: (tx) => wallet.signTransaction(tx),
    emit,
    funds,
  });

  async function syncNextNonce() {
    try {
      const pending = Number(BigInt(await pool.request<string>('eth_getTransactionCount', [address, 'pending'])));
      if (pending > nextNonce) {
        log.warn('the chain is ahead of the lane: skipping nonces someone else used', { from: nextNonce, to: pending });
        nextNonce = pending;
      }
    } catch (e) {
      log.warn('could not read the pending nonce', { error: errorText(e) });
    }
  }

  const confirmer = createConfirmer({
    store,
    pool,
    policy,
    log: log.child('confirmer'),
    now,
    address,
    broadcaster,
    slots,
    emit,
    onFinal: (s) => {
      slots.delete(s.rec.nonce);
      wake();
    },
    onRoom: wake,
    onForeignNonce: syncNextNonce,
    nextNonce: () => nextNonce,
    refill,
  });

  function newSlot(rec: LaneTx, signed: { raw: string; hash: string }, capWei: bigint): Slot {
    const t = now();
    return {
      rec,
      raw: signed.raw,
      hash: signed.hash,
      capWei,
      lastSendAt: 0,
      lastBumpAt: t,
      lastBumpBlock: pool.bestBlock(),
      forceBump: false,
      extraBumpPct: 0,
      uncertain: false,
      nonceTooLow: 0,
      noReceiptTicks: 0,
      fundsBlocked: false,
      refused: 0,
      lastRefusal: '',
      lastPoolCheckAt: t,
      busy: false,
    };
  }

  /**
   * Takes a place in line at call time: nonces are handed out strictly in the order `submit` was called, while
   * the work before the reservation (simulation, estimation) of many submits runs concurrently.
   */
  function takeTurn(): { ready: Promise<unknown>; done: () => void } {
    const ready = lock;
    let done!: () => void;
    const mine = new Promise<void>((r) => {
      done = r;
    });
    // The next turn waits for this one AND every earlier one: a submit that ends before its turn came (its
    // simulation or estimate failed) must not let the next submit reserve a nonce while an earlier one still is.
    lock = Promise.all([ready, mine]);
    return { ready, done };
  }

  function notRunning(): WcpError {
    return new WcpError(state === 'stopping' || state === 'stopped' ? 'SHUTDOWN' : 'INTERNAL', `the tx manager is ${state}`, {
      retryable: state !== 'failed',
    });
  }

  function fundsError(): WireError {
    return {
      code: 'TX_INSUFFICIENT_FUNDS',
      message: `wallet ${address} cannot pay for gas (nonce ${funds.nonce} waits for funds); not sending new transactions`,
      retryable: true,
    };
  }

  async function simulate(req: Pick<TxRequest, 'to' | 'data'>): Promise<SimResult> {
    try {
      const returnData = await pool.request<string>('eth_call', [{ from: address, to: req.to, data: req.data }, 'pending']);
      return { ok: true, returnData };
    } catch (e) {
      const c = classifyRpcError(e);
      if (c.cls !== 'reverted') throw new WcpError(c.code, `simulation failed: ${c.message}`, { retryable: c.retryable });
      const revert = decodeRevertError(e);
      return { ok: false, error: { code: 'TX_REVERTED', message: `simulation reverted: ${revert.message}`, retryable: false }, revert };
    }
  }

  async function estimate(req: TxRequest): Promise<bigint | SubmitResult> {
    try {
      const g = await pool.request<string>('eth_estimateGas', [{ from: address, to: req.to, data: req.data, value: '0x0' }]);
      return gasWithMargin(BigInt(g), policy.gasLimitMarginPercent);
    } catch (e) {
      const c = classifyRpcError(e);
      if (c.cls === 'reverted') {
        const revert = decodeRevertError(e);
        return { ok: false, stage: 'estimate', error: { code: 'TX_REVERTED', message: `gas estimation reverted: ${revert.message}`, retryable: false }, revert };
      }
      if (c.cls === 'insufficient_funds') return { ok: false, stage: 'funds', error: { code: c.code, message: c.message, retryable: true } };
      throw new WcpError(c.code, `gas estimation failed: ${c.message}`, { retryable: c.retryable });
    }
  }

  async function waitForRoom() {
    while (state === 'running' && pendingCount() >= policy.maxInFlight) {
      await new Promise<void>((r) => waiters.push(r));
    }
    if (state !== 'running') throw notRunning();
  }

  async function submit(req: TxRequest): Promise<SubmitResult> {
    if (state !== 'running') throw notRunning();
    if (!ADDRESS.test(req.to) || !HEX.test(req.data) || req.data.length % 2 !== 0) {
      throw new WcpError('INTERNAL', `bad tx request: to must be an address and data 0x-hex (kind ${req.kind})`);
    }
    if (funds.blocked) return { ok: false, stage: 'funds', error: fundsError() };
    const turn = takeTurn();
    try {
      return await submitInTurn(req, turn.ready);
    } finally {
      turn.done();
    }
  }

  async function submitInTurn(req: TxRequest, ready: Promise<unknown>): Promise<SubmitResult> {
    if (req.simulate) {
      const sim = await simulate(req);
      if (!sim.ok) return { ok: false, stage: 'simulate', error: sim.error, ...(sim.revert ? { revert: sim.revert } : {}) };
    }
    let gasLimit: bigint;
    if (req.gasLimit !== undefined) gasLimit = req.gasLimit;
    else {
      const g = await estimate(req);
      if (typeof g !== 'bigint') return g;
      gasLimit = req.minGasLimit !== undefined && req.minGasLimit > g ? req.minGasLimit : g;
    }
    await ready;
    {
      await waitForRoom();
      if (funds.blocked) return { ok: false, stage: 'funds', error: fundsError() };
      const suggestion = await broadcaster.suggestFees();
      const nonce = nextNonce;
      const t = now();
      const { rec, signed, capWei, fees } = await newRecord(
        { nonce, kind: req.kind, activity_ids: [...req.activityIds], to: req.to, data: req.data, gas_limit: gasLimit },
        suggestion,
        t,
      );
      await persistReservation(store, rec, t);
      nextNonce = Math.max(nextNonce, nonce + 1);
      const slot = newSlot(rec, signed, capWei);
      slots.set(nonce, slot);
      slot.busy = true;
      try {
        await broadcaster.send(slot, pool.bestBlock());
      } catch (e) {
        slot.uncertain = true;
        log.warn('first send failed; the tick re-sends it', { nonce, error: errorText(e) });
      } finally {
        slot.busy = false;
      }
      log.debug('submitted', { nonce, kind: req.kind, tx_hash: signed.hash, activity_ids: req.activityIds });
      emit({ type: 'submitted', kind: req.kind, nonce, activityIds: rec.activity_ids, hash: signed.hash });
      return { ok: true, nonce, hash: signed.hash, gasLimit, maxFeePerGas: fees.maxFeePerGas, maxPriorityFeePerGas: fees.maxPriorityFeePerGas };
    }
  }

  /** A new lane record at its initial fees, signed (its first hash recorded), not yet persisted. */
  async function newRecord(
    f: Pick<LaneTx, 'nonce' | 'kind' | 'activity_ids' | 'to' | 'data'> & { gas_limit: bigint },
    suggestion: FeeSuggestion,
    t: number,
  ) {
    const { fees, capWei } = initialFees(suggestion, policy);
    const rec: LaneTx = {
      ...f,
      value: '0',
      gas_limit: f.gas_limit.toString(),
      max_fee_per_gas: fees.maxFeePerGas.toString(),
      max_priority_fee_per_gas: fees.maxPriorityFeePerGas.toString(),
      fee_cap_wei: capWei.toString(),
      hashes: [],
      attempts: 1,
      state: 'reserved',
      created_at_ms: t,
      updated_at_ms: t,
    };
    const signed = await broadcaster.signRecord(rec);
    rec.hashes = [signed.hash];
    return { rec, signed, capWei, fees };
  }

  /** Fills nonce `n` with a 0-value self-transfer (a gap no record can fill), persisted before it is sent. */
  async function noopSlot(n: number, t: number, suggestion: FeeSuggestion): Promise<Slot> {
    const { rec, signed, capWei } = await newRecord({ nonce: n, kind: 'noop', activity_ids: [], to: address, data: '0x', gas_limit: NOOP_GAS }, suggestion, t);
    if (store.has(laneKey(n))) await persistLane(store, rec, t, { durable: true });
    else await persistReservation(store, rec, t);
    log.warn('filling a nonce gap with a noop self-transfer', { nonce: n, tx_hash: signed.hash });
    const slot = newSlot(rec, signed, capWei);
    slots.set(n, slot);
    return slot;
  }

  /**
   * Nonces the chain took back (see the confirmer's hole watch): a reorg deeper than `confirmations` removed
   * transactions that were already confirmed and out of the lane. Each record whose hashes are all gone from
   * the chain is pending again and re-sent with the same bytes (a nonce's meaning never changes; its activity
   * ids get a `reorged` event and, once it is mined again, a new `confirmed` one). A nonce whose record had
   * failed (another sender's tx, gone too) or is missing is treated as at start-up: left alone while the node's
   * pool holds some tx for it (below its pending count), else filled with a noop.
   */
  async function refill(holes: number[], head: number): Promise<void> {
    const t = now();
    const toSend: Slot[] = [];
    let pending: number | undefined;
    for (const n of holes) {
      if (slots.has(n)) continue;
      const rec = store.get(laneKey(n), LaneTxSchema);
      if (!rec || rec.state === 'failed') {
        pending ??= Number(BigInt(await pool.request<string>('eth_getTransactionCount', [address, 'pending'])));
        if (n >= pending) toSend.push(await noopSlot(n, t, await broadcaster.suggestFees()));
        continue;
      }
      // Still mined after all (the nonce we read came from a lagging node): nothing to do.
      if (await findReceipt(pool, rec.hashes)) continue;
      const { mined_hash, block_number, block_hash: _bh, receipt_status: _rs, gas_used: _g, error: _e, ...rest } = rec;
      const reopened: LaneTx = { ...rest, state: 'sent', updated_at_ms: t };
      await persistLane(store, reopened, t, { durable: true });
      const slot = newSlot(reopened, await broadcaster.signRecord(reopened), BigInt(reopened.fee_cap_wei ?? reopened.max_fee_per_gas));
      slots.set(n, slot);
      log.warn('a confirmed transaction is no longer on chain (reorg deeper than the confirmations): pending again; re-sending it', {
        nonce: n,
        kind: rec.kind,
        activity_ids: rec.activity_ids,
        tx_hash: mined_hash,
        block: block_number,
      });
      emit({ type: 'reorged', kind: rec.kind, nonce: n, activityIds: rec.activity_ids, hash: mined_hash ?? slot.hash, blockNumber: block_number ?? -1 });
      toSend.push(slot);
    }
    for (const slot of toSend) {
      slot.busy = true;
      try {
        await broadcaster.send(slot, head);
      } catch (e) {
        slot.uncertain = true;
        log.warn('re-send after a reorg failed; the tick retries', { nonce: slot.rec.nonce, error: errorText(e) });
      } finally {
        slot.busy = false;
      }
    }
  }

  /** Brings the lane in line with the chain after a (re)start. */
  async function resync() {
    const [latestHex, pendingHex] = await Promise.all([
      pool.request<string>('eth_getTransactionCount', [address, 'latest']),
      pool.request<string>('eth_getTransactionCount', [address, 'pending']),
    ]);
    const latest = Number(BigInt(latestHex));
    const pending = Number(BigInt(pendingHex));
    const records = loadLane(store);
    const nonceLast = readNonceLast(store);
    const plan = planResync({ latest, pending, nonceLast, records });
    log.info('lane re-sync', {
      chain_latest: latest,
      chain_pending: pending,
      nonce_last: nonceLast,
      to_resolve: plan.resolve.length,
      to_resend: plan.resend.length,
      noop_fills: plan.fillNoop.length,
      next_nonce: plan.nextNonce,
    });
    const t = now();
    let suggestion: Awaited<ReturnType<typeof broadcaster.suggestFees>> | undefined;
    const fees = async () => (suggestion ??= await broadcaster.suggestFees());

    for (const rec of plan.resolve) {
      // The chain has passed these nonces. The first tick looks up receipts for all their hashes: one of ours
      // mined → confirm it (a 'mined' record is re-verified); none → the slot fails at once (someone else's tx).
      const signed = await broadcaster.signRecord(rec);
      const open: LaneTx = rec.state === 'mined' ? rec : { ...rec, state: 'sent' };
      const slot = newSlot(open, signed, BigInt(rec.fee_cap_wei ?? rec.max_fee_per_gas));
      if (rec.state !== 'mined') slot.noReceiptTicks = policy.nonceTooLowAbortAfter - 1;
      slots.set(rec.nonce, slot);
    }
    for (const n of plan.foreign) log.warn('a transaction we did not record holds this nonce in the pool; leaving it', { nonce: n });

    const toSend: Slot[] = [];
    for (const rec0 of plan.resend) {
      const { mined_hash: _m, block_number: _b, block_hash: _bh, receipt_status: _r, gas_used: _g, ...rest } = rec0;
      const rec: LaneTx = rec0.state === 'reserved' ? rec0 : { ...rest, state: 'sent', updated_at_ms: t };
      const capWei = rec.fee_cap_wei ? BigInt(rec.fee_cap_wei) : initialFees(await fees(), policy).capWei;
      const signed = await broadcaster.signRecord(rec);
      const slot = newSlot(rec, signed, capWei);
      // The hash we just re-derived is the last one recorded (signing is deterministic).
      slot.forceBump = true;
      slots.set(rec.nonce, slot);
      toSend.push(slot);
    }
    for (const n of plan.fillNoop) toSend.push(await noopSlot(n, t, await fees()));
    toSend.sort((a, b) => a.rec.nonce - b.rec.nonce);
    const head = pool.bestBlock();
    for (const slot of toSend) {
      slot.busy = true;
      try {
        if (slot.forceBump) await broadcaster.bump(slot, head, 're-sync after restart');
        else await broadcaster.send(slot, head);
      } catch (e) {
        slot.uncertain = true;
        log.warn('re-send after restart failed; the tick retries', { nonce: slot.rec.nonce, error: errorText(e) });
      } finally {
        slot.busy = false;
      }
    }
    nextNonce = plan.nextNonce;
  }

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
      if (state !== 'idle' && state !== 'stopped') throw new WcpError('INTERNAL', `cannot start the tx manager while ${state}`);
      setState('starting');
      try {
        await pool.start();
        await resync();
      } catch (e) {
        setState('failed');
        throw e instanceof WcpError ? e : new WcpError('CHAIN_UNREACHABLE', `tx manager start failed: ${errorText(e)}`, { retryable: true });
      }
      setState('running');
      schedule();
    },
    submit,
    simulate,
    inFlight: pendingCount,
    status: () => ({
      state,
      address,
      nextNonce,
      inFlight: pendingCount(),
      fundsBlocked: funds.blocked,
      headBlock: pool.bestBlock(),
      endpoints: pool.health(),
    }),
    async stop() {
      if (state === 'stopped' || state === 'idle') {
        state = 'stopped';
        return;
      }
      setState('stopping');
      if (timer) clearTimeout(timer);
      wake();
      await ticking;
      await lock.catch(() => undefined);
      const open = [...slots.values()].filter((s) => isOpen(s.rec)).length;
      if (open > 0) log.info('stopping with open lane slots; the next start re-syncs them', { open });
      slots.clear();
      setState('stopped');
    },
  };
}

export { feesOf };
