/**
 * What may never be printed, and the one function every printed line passes through (`redact`).
 *
 * - Registered secrets (the wallet key, a keystore password, anything key-shaped found in the config or its
 *   environment variables, the secret parts of RPC URLs) are replaced by `[REDACTED]`, in any case.
 * - Every URL is shown as `scheme://host:port/…`: user info, path and query are dropped, because RPC providers
 *   put API keys in all three and presigned storage URLs are credentials. `displayUrl` is the same rule for one URL.
 *
 * A transaction or block hash has the same shape as a private key (32 bytes of hex), so key-shaped values are not
 * masked by shape alone everywhere (operators need tx hashes in logs): they are masked wherever they came from
 * configuration (`registerKeyShapedValues`), which is where a pasted key can enter.
 */

const secrets = new Set<string>();

/** A 32-byte hex value, with or without 0x: the shape of a private key. */
export const KEY_SHAPED_RE = /(?:0x)?[0-9a-fA-F]{64}(?![0-9a-fA-F])/g;

/** Registers a value that must never be printed (original, lower case, and without 0x). Short values are ignored. */
export function registerSecret(value: string): void {
  if (value.length < 8) return;
  secrets.add(value);
  secrets.add(value.toLowerCase());
  if (/^0x/i.test(value)) {
    secrets.add(value.slice(2));
    secrets.add(value.slice(2).toLowerCase());
  }
}

/** Registers every key-shaped substring of `text` (a config value or an environment variable) as a secret. */
export function registerKeyShapedValues(text: string): void {
  for (const m of text.matchAll(KEY_SHAPED_RE)) registerSecret(m[0]);
}

// scheme://[userinfo@]host[:port][/path][?query][#frag], stopping at whitespace, quotes and brackets.
const URL_RE = /\b([a-z][a-z0-9+.-]*):\/\/(?:[^\s/?#@"'<>`]*@)?([^\s/?#"'<>`,;)\]}]+)([^\s"'<>`,;)\]}]*)/gi;

/** `scheme://host:port/…` (the `/…` only when the URL had a path, query or fragment); never user info. */
export function displayUrl(url: string): string {
  URL_RE.lastIndex = 0;
  const m = URL_RE.exec(url);
  URL_RE.lastIndex = 0;
  if (!m) return '[REDACTED-URL]';
  const [, scheme, host, rest] = m;
  return `${scheme}://${host}${rest && rest !== '/' ? '/…' : ''}`;
}

/**
 * Registers the secret parts of a URL the daemon was configured with (user info, path, query), so that a library
 * that prints a URL in pieces (or its error messages) cannot leak them either.
 */
export function registerUrlSecrets(url: string): void {
  try {
    const u = new URL(url);
    if (u.username) registerSecret(decodeURIComponent(u.username));
    if (u.password) registerSecret(decodeURIComponent(u.password));
    for (const seg of u.pathname.split('/')) if (seg.length >= 8) registerSecret(seg);
    for (const [, val] of u.searchParams) if (val.length >= 8) registerSecret(val);
  } catch {
    // not a URL: nothing to register; redact() still collapses whatever URL-shaped text it meets
  }
}

/** The text with every registered secret masked and every URL collapsed to `scheme://host:port/…`. */
export function redact(text: string): string {
  let out = text.replace(
    URL_RE,
    (_all, scheme: string, host: string, rest: string) => `${scheme}://${host}${rest && rest !== '/' ? '/…' : ''}`,
  );
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join('[REDACTED]');
  return out;
}
