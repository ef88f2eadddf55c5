/**
 * Prometheus metrics (prom-client: the standard exposition format and histogram maths, not worth hand-writing).
 * One registry per daemon instance; served on `metrics.listen` at /metrics (`http.ts`). No label ever carries a secret.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  const m = {
    registry,
    buildInfo: new Gauge({
      name: 'wcp_build_info',
      help: 'always 1; the labels name the build',
      labelNames: ['version', 'commit', 'runtime'],
      registers: [registry],
    }),
    walletBalance: new Gauge({
      name: 'wcp_wallet_balance_eth',
      help: "the worker wallet's balance, ETH",
      registers: [registry],
    }),
    gasUsed: new Counter({
      name: 'wcp_gas_used_total',
      help: 'gas used by confirmed transactions, by kind',
      labelNames: ['kind'],
      registers: [registry],
    }),
    feesPaid: new Counter({
      name: 'wcp_fees_paid_eth_total',
      help: 'fees paid by confirmed transactions (gas used × effective gas price), ETH, by kind',
      labelNames: ['kind'],
      registers: [registry],
    }),
    spendWei: new Counter({
      name: 'wcp_spend_wei_total',
      help: 'fees paid by confirmed transactions (gas used × effective gas price), wei, by kind',
      labelNames: ['kind'],
      registers: [registry],
    }),
    runwayHours: new Gauge({
      name: 'wcp_runway_hours',
      help: "hours the wallet's balance lasts at the spend rate of the last hour (24 h when the last hour spent nothing); +Inf while nothing was spent",
      registers: [registry],
    }),
    executorConnected: new Gauge({
      name: 'wcp_executor_connected',
      help: '1 while an executor is connected and handshaken',
      registers: [registry],
    }),
    executorCredits: new Gauge({
      name: 'wcp_executor_credits',
      help: "the executor's free slots",
      registers: [registry],
    }),
    chainHead: new Gauge({
      name: 'wcp_chain_head_block',
      help: 'latest block seen per RPC endpoint',
      labelNames: ['endpoint'],
      registers: [registry],
    }),
    chainLag: new Gauge({
      name: 'wcp_chain_lag_blocks',
      help: 'blocks behind the best endpoint, per RPC endpoint',
      labelNames: ['endpoint'],
      registers: [registry],
    }),
    rpcErrors: new Counter({
      name: 'wcp_rpc_errors_total',
      help: 'failed JSON-RPC calls per endpoint and class (transport, timeout, http, rpc)',
      labelNames: ['endpoint', 'class'],
      registers: [registry],
    }),
    foreignTxs: new Counter({
      name: 'wcp_foreign_transactions_total',
      help: 'transactions from the wallet that this wcp did not send (the key is used elsewhere)',
      registers: [registry],
    }),
    claimJobsRecorded: new Counter({
      name: 'wcp_claim_jobs_recorded_total',
      help: 'claim_job records written',
      labelNames: ['source'],
      registers: [registry],
    }),
    polls: new Counter({
      name: 'wcp_polls_total',
      help: 'pollActivity rounds',
      labelNames: ['result'],
      registers: [registry],
    }),
    pollToRecordMs: new Histogram({
      name: 'wcp_poll_to_record_ms',
      help: 'from poll start to the claim_job commit',
      buckets: [1, 2, 5, 10, 20, 50, 100, 250, 500, 1000, 5000],
      registers: [registry],
    }),
    heartbeatLateness: new Histogram({
      name: 'wcp_heartbeat_lateness_seconds',
      help: 'per activity: when its heartbeat tx was submitted minus when the heartbeat came due (last heartbeat + interval), chain clock',
      buckets: [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60],
      registers: [registry],
    }),
    quarantined: new Counter({
      name: 'wcp_store_quarantined_total',
      help: 'corrupt records quarantined',
      registers: [registry],
    }),
    txSent: new Counter({
      name: 'wcp_tx_total',
      help: 'transactions by kind and outcome',
      labelNames: ['kind', 'outcome'],
      registers: [registry],
    }),
    activities: new Counter({
      name: 'wcp_activities_total',
      help: 'activities finished by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    inflight: new Gauge({
      name: 'wcp_inflight',
      help: 'activities held, by state',
      labelNames: ['state'],
      registers: [registry],
    }),
    executorCompletions: new Counter({
      name: 'wcp_executor_completions_total',
      help: 'Completions received from the executor, by what the lifecycle decided (accepted, duplicate, refused, stale, pending, not_held, rejected_by_bridge)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    completionsSettled: new Counter({
      name: 'wcp_completions_settled_total',
      help: 'activities whose complete or fail is settled on chain (compare with wcp_executor_completions_total)',
      labelNames: ['kind'],
      registers: [registry],
    }),
    claimsPaused: new Gauge({
      name: 'wcp_claims_paused',
      help: '1 for every reason claims are paused now (several can hold at once; src/lifecycle/pauses.ts lists them), 0 otherwise',
      labelNames: ['reason'],
      registers: [registry],
    }),
    executorRejected: new Counter({
      name: 'wcp_executor_rejected_messages_total',
      help: 'executor messages refused',
      registers: [registry],
    }),
    threadHeapUsed: new Gauge({
      name: 'wcp_thread_heap_used_bytes',
      help: 'JS heap in use per thread (supervisor, discovery, executor), garbage not yet collected included; sampled every 5 s',
      labelNames: ['thread'],
      registers: [registry],
    }),
    threadLoopLag: new Gauge({
      name: 'wcp_thread_event_loop_lag_seconds',
      help: 'mean event-loop delay per thread over the last 5 s sampling interval',
      labelNames: ['thread'],
      registers: [registry],
    }),
    threadLoopLagMax: new Gauge({
      name: 'wcp_thread_event_loop_lag_max_seconds',
      help: 'longest event-loop delay per thread over the last 5 s sampling interval',
      labelNames: ['thread'],
      registers: [registry],
    }),
    state: new Gauge({ name: 'wcp_up', help: '1 while the supervisor runs', registers: [registry] }),
    ready: new Gauge({
      name: 'wcp_ready',
      help: '1 when the last /readyz (or readiness round) found every check passing',
      registers: [registry],
    }),
  };
  try {
    // process_resident_memory_bytes, process_cpu_seconds_total, nodejs_heap_* …: the standard process metrics. Under
    // Bun (README, "Metrics"): no nodejs_gc_duration_seconds (no GC performance entries), nodejs_active_handles /
    // _requests / _resources read 0, the nodejs_heap_space_* are one `old` space, and nodejs_eventloop_lag_seconds
    // reads ~0; the nodejs_heap_* and nodejs_eventloop_lag_* are the supervisor's thread only (wcp_thread_* has
    // every thread).
    collectDefaultMetrics({ register: registry });
  } catch {
    // a runtime without some of the probes they use: the wcp metrics stand on their own
  }
  return m;
}
export type Metrics = ReturnType<typeof createMetrics>;
