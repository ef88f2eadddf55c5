/**
 * A raw JSON-RPC call to one endpoint that reports the real cause of a failure — connection refused, name not
 * resolved, TLS, timeout, an HTTP error status, an answer that is not JSON-RPC — instead of "no endpoint answered".
 * The doctor talks to each endpoint on its own (no failover): the point is to see every endpoint's health.
 */
import { displayUrl } from '../internal/redact.ts';

export type ProbeResult = { ok: true; result: unknown; ms: number } | { ok: false; cause: string; rpcError?: boolean };

/** The innermost error code / message of a fetch failure (undici and Bun wrap the socket error in `cause`). */
function rootCause(e: unknown): string {
  let cur: unknown = e;
  for (let i = 0; i < 5 && cur && typeof cur === 'object'; i++) {
    const o = cur as { code?: unknown; message?: unknown; cause?: unknown; name?: unknown };
    const code = typeof o.code === 'string' ? o.code : '';
    if (/ECONNREFUSED|ConnectionRefused/i.test(code) || /refused/i.test(String(o.message)))
      return 'connection refused (nothing listens on that host:port)';
    if (/ENOTFOUND|EAI_AGAIN|DNS/i.test(code) || /getaddrinfo|resolve/i.test(String(o.message)))
      return 'host name not resolved (DNS)';
    if (/CERT|TLS|SSL|ERR_TLS/i.test(code) || /certificate|tls|ssl/i.test(String(o.message)))
      return `TLS failed: ${String(o.message).slice(0, 160)}`;
    if (/ECONNRESET|ConnectionClosed/i.test(code)) return 'connection reset by the peer';
    if (o.name === 'TimeoutError' || o.name === 'AbortError') return 'no answer before the timeout';
    if (o.cause === undefined) return String(o.message ?? code ?? e).slice(0, 200);
    cur = o.cause;
  }
  return String(e).slice(0, 200);
}

/** One JSON-RPC request to `url`. */
export async function rpcProbe(
  url: string,
  method: string,
  params: unknown[],
  timeoutMs: number,
): Promise<ProbeResult> {
  const started = Date.now();
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    return { ok: false, cause: rootCause(e) };
  }
  const text = await res.text().catch(() => '');
  if (!res.ok && !text.trim().startsWith('{'))
    return { ok: false, cause: `HTTP ${res.status} ${res.statusText}`.trim() };
  let body: { jsonrpc?: unknown; result?: unknown; error?: { code?: number; message?: string } };
  try {
    body = JSON.parse(text);
  } catch {
    return { ok: false, cause: `not a JSON-RPC endpoint (HTTP ${res.status}, the answer is not JSON)` };
  }
  if (body === null || typeof body !== 'object' || (body.result === undefined && body.error === undefined)) {
    return { ok: false, cause: `not a JSON-RPC endpoint (HTTP ${res.status}, no result or error)` };
  }
  if (body.error)
    return { ok: false, cause: `${method} refused: ${String(body.error.message ?? body.error.code)}`, rpcError: true };
  return { ok: true, result: body.result, ms: Date.now() - started };
}

/** How an endpoint is named in output: never its path, query or credentials. */
export const endpointName = (url: string, i: number): string => `#${i} ${displayUrl(url)}`;
