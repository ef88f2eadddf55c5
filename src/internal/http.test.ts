import { afterAll, beforeAll, expect, test } from 'bun:test';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { type OperatorHttp, serveOperatorHttp } from './http.ts';
import { createLogger } from './logger.ts';
import { createMetrics } from './metrics.ts';
import { STATUS_PAGE } from './status-page.ts';

let http: OperatorHttp;
let base: string;

beforeAll(async () => {
  http = await serveOperatorHttp(createMetrics(), '127.0.0.1:0', createLogger('t', { write: () => {} }));
  base = `http://127.0.0.1:${(http.server.address() as AddressInfo).port}`;
});
afterAll(() => http.close());

const script = () => /<script>([\s\S]*?)<\/script>/.exec(STATUS_PAGE)?.[1] ?? '';

test('GET / is the status page with a strict CSP allowing exactly its own inline script and style', async () => {
  const res = await fetch(`${base}/`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  const csp = res.headers.get('content-security-policy') ?? '';
  const hash = createHash('sha256').update(script()).digest('base64');
  expect(csp).toContain(`script-src 'sha256-${hash}'`);
  for (const d of ["default-src 'none'", "connect-src 'self'", "base-uri 'none'", "frame-ancestors 'none'"])
    expect(csp).toContain(d);
  expect(csp).not.toContain('unsafe');
  expect(await res.text()).toBe(STATUS_PAGE);
});

test('the page loads nothing from elsewhere and never turns data into HTML', () => {
  expect(STATUS_PAGE.match(/<script/g)).toHaveLength(1);
  expect(STATUS_PAGE).not.toMatch(/\b(?:src|href)\s*=/i);
  expect(STATUS_PAGE).not.toMatch(/https?:\/\/|@import|url\(/i);
  expect(script()).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\b|new Function/);
  expect(STATUS_PAGE).not.toMatch(/\sstyle=|\son[a-z]+=/i);
});

test('read-only: other methods are 405 with Allow, HEAD answers without a body', async () => {
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
    const res = await fetch(`${base}/status`, { method });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
  }
  const head = await fetch(`${base}/`, { method: 'HEAD' });
  expect(head.status).toBe(200);
  expect(await head.text()).toBe('');
  expect((await fetch(`${base}/status`)).status).toBe(503); // no probes yet: starting
  expect((await fetch(`${base}/nothing`)).status).toBe(404);
});
