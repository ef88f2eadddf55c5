/**
 * What may never be printed, and the one function every printed line passes through (`redact`).
 *
 * - Registered secrets (the wallet key, a keystore password, anything key- or mnemonic-shaped found in the config or
 *   its environment variables, the secret parts of RPC URLs) are replaced by `[REDACTED]`, in any case. A secret of
 *   8 characters or more is masked wherever it occurs; a shorter one (4 to 7 characters) only where it stands as a
 *   whole token (not inside a longer run of letters and digits), so that a short API key is masked in
 *   "Cannot POST /v3/k3y9" while ordinary words stay readable. Values under 4 characters are never registered:
 *   the config loader refuses them where they would be credentials (`urlCredentialProblem`).
 * - Every URL is shown as `scheme://host:port/…`: user info, path and query are dropped, because RPC providers
 *   put API keys in all three and presigned storage URLs are credentials. `displayUrl` is the same rule for one URL;
 *   `maskUrlText` masks text that was meant to be a URL but is not one (no scheme, `http//`, `http:/`).
 * - The registry is per thread: the supervisor hands `registeredSecrets()` to every worker thread, which
 *   registers them (`registerSecrets`) before it runs anything that logs.
 *
 * A transaction or block hash has the same shape as a private key (32 bytes of hex), so key-shaped values are not
 * masked by shape alone everywhere (operators need tx hashes in logs): they are masked wherever they came from
 * configuration (`registerKeyShapedValues`), which is where a pasted key can enter.
 */

/** Shortest value ever registered as a secret. */
export const MIN_SECRET_LENGTH = 4;
/** Secrets shorter than this are masked only as whole tokens. */
const SUBSTRING_MIN = 8;

const secrets = new Set<string>();
let shortRe: RegExp | null | undefined;

/** A 32-byte hex value, with or without 0x: the shape of a private key. */
export const KEY_SHAPED_RE = /(?:0x)?[0-9a-fA-F]{64}(?![0-9a-fA-F])/g;
/** 12 to 24 lower-case words separated by white space: the shape of a BIP-39 mnemonic. */
const MNEMONIC_SHAPED_RE = /(?<![A-Za-z])(?:[a-z]{3,8}\s+){11,23}[a-z]{3,8}(?![A-Za-z])/g;

function add(s: string): void {
  if (s.length < MIN_SECRET_LENGTH || secrets.has(s)) return;
  secrets.add(s);
  if (s.length < SUBSTRING_MIN) shortRe = undefined;
}

/** Registers a value that must never be printed (original, lower case, and without 0x). Under 4 characters: ignored. */
export function registerSecret(value: string): void {
  add(value);
  add(value.toLowerCase());
  if (/^0x/i.test(value)) {
    add(value.slice(2));
    add(value.slice(2).toLowerCase());
  }
}

/** Every secret registered in this thread, to hand to another thread (`registerSecrets`). */
export function registeredSecrets(): string[] {
  return [...secrets];
}

/** Registers the secrets another thread registered (`registeredSecrets()` there). */
export function registerSecrets(list: readonly unknown[] | undefined): void {
  for (const s of list ?? []) if (typeof s === 'string') add(s);
}

/** Registers every key- or mnemonic-shaped substring of `text` (a config value or an environment variable). */
export function registerKeyShapedValues(text: string): void {
  for (const m of text.matchAll(KEY_SHAPED_RE)) registerSecret(m[0]);
  for (const m of text.matchAll(MNEMONIC_SHAPED_RE)) registerSecret(m[0]);
}

// scheme://[userinfo@]host[:port][/path][?query][#frag], stopping at whitespace, quotes and brackets.
const URL_RE = /\b([a-z][a-z0-9+.-]*):\/\/(?:[^\s/?#@"'<>`]*@)?([^\s/?#"'<>`,;)\]}]+)([^\s"'<>`,;)\]}]*)/gi;

/** `scheme://host:port/…` (the `/…` only when the URL had a path, query or fragment); never user info. */
export function displayUrl(url: string): string {
  URL_RE.lastIndex = 0;
  const m = URL_RE.exec(url);
  URL_RE.lastIndex = 0;
  if (!m) return maskUrlText(url);
  const [, scheme, host, rest] = m;
  return `${scheme}://${host}${rest && rest !== '/' ? '/…' : ''}`;
}

/**
 * Text meant as a URL, whatever its shape (`user:pass@host:8545/v3/KEY?apikey=…`, `http//…`, `http:/…`), with
 * everything that may be a credential masked: the user info becomes `[REDACTED]@`, the path, query and fragment
 * `/…`; a leading scheme (`http`, `http:`, followed by slashes) and `host:port` are kept, so the operator sees which
 * endpoint was meant.
 */
export function maskUrlText(text: string): string {
  const s = text.trim();
  const prefix = /^[A-Za-z][A-Za-z0-9+.-]*:?\/+/.exec(s)?.[0] ?? '';
  let rest = s.slice(prefix.length);
  const end = rest.search(/[/?#]/);
  const at = rest.lastIndexOf('@');
  let creds = '';
  if (at >= 0) {
    creds = '[REDACTED]@';
    rest = rest.slice(at + 1);
  }
  const hostEnd = at >= 0 ? rest.search(/[/?#]/) : end;
  const host = hostEnd < 0 ? rest : rest.slice(0, hostEnd);
  const tail = hostEnd < 0 ? '' : rest.slice(hostEnd);
  // A host part with white space or quotes is not a host: it may be anything, so it is not shown.
  const shownHost = /^[A-Za-z0-9.\-_[\]:]*$/.test(host) ? host : '[REDACTED]';
  return `${prefix}${creds}${shownHost}${tail && tail !== '/' ? '/…' : ''}`;
}

/** Query parameter names whose values are credentials whatever their shape. */
const CREDENTIAL_PARAM = /key|token|secret|pass|auth|sig|cred|jwt|session/i;

/** A path segment or plain query value that may be a token: 8+ characters, or 4+ mixing letters and digits. */
const tokenLike = (s: string): boolean =>
  s.length >= SUBSTRING_MIN || (s.length >= MIN_SECRET_LENGTH && /[0-9]/.test(s) && /[A-Za-z]/.test(s));

function decoded(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The parts of a configured URL that are secret: `credential` ones are secret whatever their length. */
function urlSecretParts(u: URL): { credential: string[]; tokens: string[] } {
  const credential: string[] = [];
  const tokens: string[] = [];
  if (u.username) credential.push(u.username);
  if (u.password) credential.push(u.password);
  for (const seg of u.pathname.split('/')) if (seg && tokenLike(decoded(seg))) tokens.push(seg);
  for (const pair of u.search.slice(1).split('&')) {
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    const value = pair.slice(eq + 1);
    if (value === '') continue;
    if (CREDENTIAL_PARAM.test(decoded(pair.slice(0, eq)))) credential.push(value);
    else if (tokenLike(decoded(value))) tokens.push(value);
  }
  if (u.hash.length > 1 && tokenLike(decoded(u.hash.slice(1)))) tokens.push(u.hash.slice(1));
  return { credential, tokens };
}

/**
 * Why a configured URL's credentials cannot be kept out of the output, or undefined: user info, a password or a
 * credential-named query value (`apikey=`, `token=`…) under 4 characters would have to be masked wherever those
 * characters occur, which would mangle every line, so it is refused instead.
 */
export function urlCredentialProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  const short = urlSecretParts(u).credential.find((c) => decoded(c).length < MIN_SECRET_LENGTH);
  return short === undefined
    ? undefined
    : `a credential (user name, password, or key/token query value) of at least ${MIN_SECRET_LENGTH} characters: shorter ones cannot be masked in logs without masking ordinary text`;
}

/**
 * Registers the secret parts of a URL the daemon was configured with, as written and percent-decoded, so that an
 * endpoint echoing them ("Cannot POST /v3/<token>?apikey=…") or a library printing a URL in pieces cannot leak
 * them: user info and password, credential-named query values, and path segments and other query values that look
 * like tokens (8+ characters, or 4+ mixing letters and digits). Words such as `v3`, `rpc` or `mainnet` in a path
 * are not secrets and stay readable.
 */
export function registerUrlSecrets(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return; // not a URL: the config loader refuses it; redact() still collapses whatever URL-shaped text it meets
  }
  const { credential, tokens } = urlSecretParts(u);
  for (const s of [...credential, ...tokens]) {
    registerSecret(s);
    registerSecret(decoded(s));
  }
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function shortSecretsRe(): RegExp | null {
  if (shortRe !== undefined) return shortRe;
  const short = [...secrets].filter((s) => s.length < SUBSTRING_MIN).sort((a, b) => b.length - a.length);
  shortRe = short.length
    ? new RegExp(`(?<![A-Za-z0-9])(?:${short.map(escapeRe).join('|')})(?![A-Za-z0-9])`, 'gi')
    : null;
  return shortRe;
}

/** The text with every registered secret masked and every URL collapsed to `scheme://host:port/…`. */
export function redact(text: string): string {
  let out = text.replace(
    URL_RE,
    (_all, scheme: string, host: string, rest: string) => `${scheme}://${host}${rest && rest !== '/' ? '/…' : ''}`,
  );
  for (const s of secrets) if (s.length >= SUBSTRING_MIN && out.includes(s)) out = out.split(s).join('[REDACTED]');
  const re = shortSecretsRe();
  if (re) out = out.replace(re, '[REDACTED]');
  return out;
}
