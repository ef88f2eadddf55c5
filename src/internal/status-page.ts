/**
 * The operator's status page (`GET /` on `metrics.listen`): one self-contained HTML file (`status-page.html`, its
 * CSS and JS inline, embedded in the binary as text) that reads `/status` every 2 s and renders it as text only.
 * Its Content-Security-Policy allows exactly the page's own inline script and style (by their SHA-256), requests
 * to its own origin, and nothing else: no other script, style, frame, form, base or plugin.
 */
import { createHash } from 'node:crypto';
import page from './status-page.html' with { type: 'text' };

/** The page, byte for byte (Bun types `.html` imports as its HTML bundles; a text import is the file's text). */
export const STATUS_PAGE: string = page as unknown as string;

function inline(tag: 'script' | 'style'): string[] {
  const re = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g');
  return [...STATUS_PAGE.matchAll(re)].map(
    (m) =>
      `'sha256-${createHash('sha256')
        .update(m[1] ?? '')
        .digest('base64')}'`,
  );
}

export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${inline('script').join(' ')}`,
  `style-src ${inline('style').join(' ')}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Headers of every answer of the operator listener: no sniffing, no referrer. */
export const COMMON_HEADERS = { 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' } as const;

export const STATUS_PAGE_HEADERS = {
  ...COMMON_HEADERS,
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': STATUS_PAGE_CSP,
  'x-frame-options': 'DENY',
} as const;
