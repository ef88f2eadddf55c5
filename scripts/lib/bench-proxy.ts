/**
 * A JSON-RPC proxy in front of a node for benchmarks: it forwards every HTTP POST unchanged and timestamps, in
 * this process's clock, every raw transaction as it arrives (before forwarding), with its hash, target and
 * calldata decoded from the signed bytes. A daemon pointed at it shows when its transactions reach the node
 * without asking the daemon. (The test kit's fault-injecting proxy lives in test/support/; scripts may not use it.)
 */
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { Transaction } from 'ethers';

/** One `eth_sendRawTransaction` seen by the proxy. */
export interface SeenTx {
  /** performance.timeOrigin + performance.now() when its request body had arrived. */
  atMs: number;
  hash: string;
  from: string;
  to: string;
  nonce: number;
  data: string;
}

/** A running proxy. */
export interface BenchProxy {
  url: string;
  /** Raw transactions in arrival order (re-sends of one nonce appear each time they arrive). */
  txs: SeenTx[];
  /** Calls forwarded, per method. */
  counts: Record<string, number>;
  close(): Promise<void>;
}

const now = (): number => performance.timeOrigin + performance.now();

/** Starts a proxy for `target` on a free loopback port. */
export async function startBenchProxy(target: string): Promise<BenchProxy> {
  const txs: SeenTx[] = [];
  const counts: Record<string, number> = {};
  const sockets = new Set<Socket>();
  const note = (call: { method?: string; params?: unknown[] }, at: number) => {
    const m = String(call.method);
    counts[m] = (counts[m] ?? 0) + 1;
    if (m !== 'eth_sendRawTransaction') return;
    try {
      const tx = Transaction.from(String(call.params?.[0]));
      txs.push({
        atMs: at,
        hash: tx.hash as string,
        from: tx.from as string,
        to: tx.to ?? '',
        nonce: tx.nonce,
        data: tx.data,
      });
    } catch {
      // Not a transaction the node will accept either; it answers the error itself.
    }
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = now();
      const body = Buffer.concat(chunks);
      try {
        const parsed = JSON.parse(body.toString('utf8')) as unknown;
        for (const c of Array.isArray(parsed) ? parsed : [parsed]) note(c as { method?: string }, at);
      } catch {
        // Forwarded as is; the node answers the parse error.
      }
      fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
        .then(async (r) => {
          const text = await r.text();
          if (!res.destroyed) res.writeHead(r.status, { 'content-type': 'application/json' }).end(text);
        })
        .catch(() => {
          if (!res.headersSent && !res.destroyed) res.writeHead(502).end();
        });
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : 0);
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    txs,
    counts,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
