/**
 * A small JSON-RPC proxy in front of a node (anvil), for fault-injection tests. It forwards every HTTP POST to
 * `target` and can, per call or for the whole endpoint:
 *  - cut the connection before forwarding (the node never sees the call) or AFTER forwarding (the node acted on
 *    it, the client gets no answer: "did my send go through?"),
 *  - delay answers, answer with a JSON-RPC error or an HTTP status, answer with a fixed result, rewrite answers,
 *  - go down (refuse connections: the port is closed) and come back up on the same port,
 *  - lag behind the node: serve a head `n` blocks old (or frozen at a block), with `latest`/`pending` block tags
 *    rewritten to that block and receipts/transactions of newer blocks hidden.
 * It records every call (method, params, time) so a test can assert what a client did.
 *
 * Batch requests (a JSON array) are handled element by element for rewrites and lag; a cut, delay, error or HTTP
 * rule that matches any element applies to the whole HTTP request.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface RpcCall {
  jsonrpc?: string;
  id?: unknown;
  method: string;
  params?: unknown[];
}

export interface RpcReply {
  jsonrpc: string;
  id: unknown;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

export type ProxyAction =
  /** Destroy the connection without forwarding: the node never sees the call. */
  | { type: 'cutBeforeForward' }
  /** Forward to the node, wait for its answer, then destroy the connection without replying. */
  | { type: 'cutAfterForward' }
  /** Wait `ms` before forwarding. */
  | { type: 'delay'; ms: number }
  /** Answer with a JSON-RPC error without forwarding. */
  | { type: 'error'; code: number; message: string; data?: unknown }
  /** Answer with this HTTP status and an empty body without forwarding. */
  | { type: 'http'; status: number }
  /** Answer with this result without forwarding. */
  | { type: 'respond'; result: unknown | ((call: RpcCall) => unknown) }
  /** Forward, then replace the node's answer with `fn(call, reply)`. */
  | { type: 'rewrite'; fn: (call: RpcCall, reply: RpcReply) => RpcReply | Promise<RpcReply> };

export interface ProxyRule {
  /** For logs and `rule.hits`. */
  name?: string;
  /** A method name, a method pattern, or a predicate over the call. */
  match: string | RegExp | ((call: RpcCall) => boolean);
  action: ProxyAction;
  /** Fire at most this many times, then stop matching (default: always). */
  times?: number;
  /** Skip the first `skip` matching calls. */
  skip?: number;
}

interface ActiveRule extends ProxyRule {
  hits: number;
  seen: number;
}

export interface CallRecord {
  method: string;
  params: unknown[];
  atMs: number;
  /** What happened: forwarded, or the rule action that took it. */
  outcome: string;
}

export interface RpcProxyOptions {
  /** Upstream JSON-RPC URL (e.g. anvil.url). */
  target: string;
  /** Listen port; default a free one (kept across down/up). */
  port?: number;
  /** Keep at most this many call records (default 50 000). */
  maxRecords?: number;
}

export interface RpcProxy {
  url: string;
  port: number;
  /** Adds a rule; returns a handle with its hit count and a remover. Rules are tried in insertion order. */
  addRule(rule: ProxyRule): { readonly hits: number; remove(): void };
  clearRules(): void;
  /** Refuse connections (close the listening port and every open socket). */
  down(): Promise<void>;
  /** Listen again on the same port. */
  up(): Promise<void>;
  isDown(): boolean;
  /** Serve a head `blocks` behind the node's (0 or null: no lag). */
  lag(blocks: number | null): void;
  /** Serve a head frozen at `block` (default: the node's current head); `null` unfreezes. */
  freeze(block?: number | null): Promise<void>;
  /** The calls seen, oldest first (optionally of one method). */
  calls(method?: string): CallRecord[];
  /** Count of calls per method. */
  counts(): Record<string, number>;
  resetRecords(): void;
  close(): Promise<void>;
}

const TAGGED_PARAM_INDEX: Record<string, number> = {
  eth_call: 1,
  eth_estimateGas: 1,
  eth_getBalance: 1,
  eth_getCode: 1,
  eth_getTransactionCount: 1,
  eth_getStorageAt: 2,
  eth_getBlockByNumber: 0,
  eth_feeHistory: 1,
};

const hex = (n: number) => `0x${n.toString(16)}`;

export async function startRpcProxy(opts: RpcProxyOptions): Promise<RpcProxy> {
  const rules: ActiveRule[] = [];
  const records: CallRecord[] = [];
  const maxRecords = opts.maxRecords ?? 50_000;
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  let port = opts.port ?? 0;
  let lagBlocks = 0;
  let frozenAt: number | null = null;
  let headCache: { at: number; n: number } | null = null;

  async function upstream(body: unknown): Promise<unknown> {
    const res = await fetch(opts.target, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return await res.json();
  }

  async function realHead(): Promise<number> {
    const t = Date.now();
    if (headCache && t - headCache.at < 100) return headCache.n;
    const r = (await upstream({ jsonrpc: '2.0', id: 0, method: 'eth_blockNumber', params: [] })) as RpcReply;
    const n = Number(BigInt(r.result as string));
    headCache = { at: t, n };
    return n;
  }

  /** The head this proxy serves, or null when it does not lag. */
  async function servedHead(): Promise<number | null> {
    if (frozenAt !== null) return frozenAt;
    if (lagBlocks > 0) return Math.max(0, (await realHead()) - lagBlocks);
    return null;
  }

  function matches(rule: ActiveRule, call: RpcCall): boolean {
    if (rule.times !== undefined && rule.hits >= rule.times) return false;
    const m = rule.match;
    const ok = typeof m === 'string' ? call.method === m : m instanceof RegExp ? m.test(call.method) : m(call);
    if (!ok) return false;
    rule.seen += 1;
    if (rule.skip !== undefined && rule.seen <= rule.skip) return false;
    return true;
  }

  function ruleFor(call: RpcCall): ActiveRule | undefined {
    for (const r of rules) if (matches(r, call)) return r;
    return undefined;
  }

  function record(call: RpcCall, outcome: string) {
    records.push({ method: call.method, params: call.params ?? [], atMs: Date.now(), outcome });
    if (records.length > maxRecords) records.splice(0, records.length - maxRecords);
  }

  /** Rewrites block tags of a lagging endpoint; may answer directly (eth_blockNumber). */
  async function lagCall(call: RpcCall, head: number): Promise<{ call: RpcCall; reply?: unknown }> {
    if (call.method === 'eth_blockNumber') return { call, reply: hex(head) };
    const idx = TAGGED_PARAM_INDEX[call.method];
    if (idx === undefined) return { call };
    const params = [...(call.params ?? [])];
    const tag = params[idx];
    if (tag === undefined || tag === 'latest' || tag === 'pending' || tag === 'safe' || tag === 'finalized')
      params[idx] = hex(head);
    else if (typeof tag === 'string' && tag.startsWith('0x') && Number(BigInt(tag)) > head) {
      if (call.method === 'eth_getBlockByNumber') return { call, reply: null };
      params[idx] = hex(head);
    }
    return { call: { ...call, params } };
  }

  /** Hides what a lagging node has not seen yet. */
  function lagReply(call: RpcCall, reply: RpcReply, head: number): RpcReply {
    const r = reply.result as { blockNumber?: string } | null | undefined;
    if (
      (call.method === 'eth_getTransactionReceipt' || call.method === 'eth_getTransactionByHash') &&
      r &&
      typeof r.blockNumber === 'string' &&
      Number(BigInt(r.blockNumber)) > head
    ) {
      return call.method === 'eth_getTransactionReceipt'
        ? { ...reply, result: null }
        : { ...reply, result: { ...r, blockNumber: null, blockHash: null, transactionIndex: null } };
    }
    return reply;
  }

  async function handleOne(call: RpcCall, head: number | null, rule: ActiveRule | undefined): Promise<RpcReply> {
    const id = call.id ?? null;
    const a = rule?.action;
    if (a?.type === 'error')
      return {
        jsonrpc: '2.0',
        id,
        error: { code: a.code, message: a.message, ...(a.data !== undefined ? { data: a.data } : {}) },
      };
    if (a?.type === 'respond')
      return {
        jsonrpc: '2.0',
        id,
        result: typeof a.result === 'function' ? (a.result as (c: RpcCall) => unknown)(call) : a.result,
      };
    let fwd = call;
    if (head !== null) {
      const l = await lagCall(call, head);
      if ('reply' in l) return { jsonrpc: '2.0', id, result: l.reply };
      fwd = l.call;
    }
    let reply = (await upstream({ jsonrpc: '2.0', id, method: fwd.method, params: fwd.params ?? [] })) as RpcReply;
    if (head !== null) reply = lagReply(call, reply, head);
    if (a?.type === 'rewrite') reply = await a.fn(call, reply);
    return reply;
  }

  async function handle(req: IncomingMessage, res: ServerResponse, body: string) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      res.writeHead(400).end();
      return;
    }
    const batch = Array.isArray(parsed);
    const calls = (batch ? parsed : [parsed]) as RpcCall[];
    const picked = calls.map((c) => ruleFor(c));
    // Whole-request actions: the first call whose rule is one of them decides.
    const whole = picked.find(
      (r) => r && ['cutBeforeForward', 'cutAfterForward', 'delay', 'http'].includes(r.action.type),
    );
    for (const r of picked) if (r) r.hits += 1;
    for (const [i, c] of calls.entries()) record(c, picked[i]?.action.type ?? 'forwarded');
    const wa = whole?.action;
    if (wa?.type === 'cutBeforeForward') {
      req.socket.destroy();
      return;
    }
    if (wa?.type === 'http') {
      res.writeHead(wa.status).end();
      return;
    }
    if (wa?.type === 'delay') await new Promise((r) => setTimeout(r, wa.ms));
    const head = await servedHead();
    let replies: RpcReply[];
    try {
      replies = await Promise.all(calls.map((c, i) => handleOne(c, head, picked[i])));
    } catch {
      res.writeHead(502).end();
      return;
    }
    if (wa?.type === 'cutAfterForward') {
      req.socket.destroy();
      return;
    }
    if (res.destroyed || req.socket.destroyed) return;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(batch ? replies : replies[0]));
  }

  async function listen(): Promise<void> {
    const srv = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        handle(req, res, Buffer.concat(chunks).toString('utf8')).catch(() => {
          if (!res.headersSent && !req.socket.destroyed) res.writeHead(500).end();
        });
      });
    });
    srv.on('connection', (s: Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => {
        const addr = srv.address();
        if (typeof addr === 'object' && addr) port = addr.port;
        resolve();
      });
    });
    server = srv;
  }

  async function closeServer(): Promise<void> {
    const srv = server;
    server = null;
    if (!srv) return;
    for (const s of sockets) s.destroy();
    sockets.clear();
    await new Promise<void>((r) => srv.close(() => r()));
  }

  await listen();

  return {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    addRule(rule) {
      const r: ActiveRule = { ...rule, hits: 0, seen: 0 };
      rules.push(r);
      return {
        get hits() {
          return r.hits;
        },
        remove() {
          const i = rules.indexOf(r);
          if (i >= 0) rules.splice(i, 1);
        },
      };
    },
    clearRules() {
      rules.length = 0;
    },
    down: closeServer,
    async up() {
      if (!server) await listen();
    },
    isDown: () => server === null,
    lag(blocks) {
      lagBlocks = blocks ?? 0;
    },
    async freeze(block) {
      if (block === null) {
        frozenAt = null;
        return;
      }
      frozenAt = block ?? (await realHead());
    },
    calls: (method) => (method ? records.filter((r) => r.method === method) : [...records]),
    counts() {
      const out: Record<string, number> = {};
      for (const r of records) out[r.method] = (out[r.method] ?? 0) + 1;
      return out;
    },
    resetRecords() {
      records.length = 0;
    },
    close: closeServer,
  } as RpcProxy;
}
