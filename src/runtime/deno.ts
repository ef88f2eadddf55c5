/**
 * wcp under Deno: the permissions it needs and a readable refusal when one is missing, instead of Deno's uncaught
 * `NotCapable` (lmdb loads its native addon while modules load, before the CLI could catch anything).
 *
 * The narrowest set that runs the daemon (checked by test/deno-compat.test.ts):
 *   deno run --allow-env --allow-read=<wcp>,<wcp>/node_modules,<store dir>,/usr/bin/ldd --allow-write=<store dir>
 *            --allow-ffi=<wcp>/node_modules --allow-sys=hostname --allow-net=<rpc>,<executor>,<subnet-api> src/main.ts run
 * - env: the config reads every `WCP_*` variable, so it enumerates the environment;
 * - read: the CommonJS dependencies are read from node_modules; the config file and store directory; /usr/bin/ldd,
 *   which lmdb's loader reads to tell glibc from musl (without it, it asks for `--allow-sys` instead);
 * - write: the store's lock file (`<store>.pid`); LMDB's own files are written by native code, which
 *   `--allow-ffi` lets past every other permission anyway;
 * - ffi: lmdb and msgpackr-extract are Node-API addons;
 * - sys: the host name, which the store lock file records;
 * - net: the RPC endpoints, the executor and the subnet-api (gRPC), and the metrics port when enabled.
 */

/** A permission checked before anything loads, with why wcp needs it. */
interface Needed {
  flag: string;
  why: string;
  query: { name: 'env' } | { name: 'read' | 'ffi'; path: string };
}

type DenoPermissions = { querySync(d: Needed['query']): { state: 'granted' | 'prompt' | 'denied' } };
type DenoApi = { permissions?: DenoPermissions; realPathSync?: (p: string) => string };

/**
 * The node_modules wcp's dependencies load from (two levels above this file), as Deno checks it: its real path
 * when it is a link and reading it is allowed, else as written.
 */
function modulesDir(deno: DenoApi): string {
  const dir = `${decodeURIComponent(new URL('../..', import.meta.url).pathname)}node_modules`;
  try {
    return deno.realPathSync?.(dir) ?? dir;
  } catch {
    return dir;
  }
}

function needed(deno: DenoApi): Needed[] {
  const dir = modulesDir(deno);
  return [
    { flag: '--allow-env', why: 'the config reads WCP_* variables', query: { name: 'env' } },
    { flag: `--allow-read=${dir}`, why: 'dependencies load from node_modules', query: { name: 'read', path: dir } },
    { flag: `--allow-ffi=${dir}`, why: "lmdb's native addon, the store", query: { name: 'ffi', path: dir } },
  ];
}

/**
 * Under Deno, the load-time permissions that were not granted (flag and reason), else an empty list. Network
 * permission is checked when used (its hosts come from the config): see `denoPermissionMessage`.
 */
export function missingDenoPermissions(): string[] {
  const deno = (globalThis as { Deno?: DenoApi }).Deno;
  const perms = deno?.permissions;
  if (deno === undefined || perms === undefined) return [];
  return needed(deno)
    .filter((n) => perms.querySync(n.query).state !== 'granted')
    .map((n) => `${n.flag} (${n.why})`);
}

/** True for Deno's error when code touches something its permissions do not allow. */
export function isDenoPermissionError(e: unknown): e is Error {
  return (
    e instanceof Error &&
    (e.name === 'NotCapable' || e.name === 'PermissionDenied') &&
    typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined'
  );
}

/** The refusal wcp prints: what is missing and the command line that works. */
export function denoPermissionMessage(missing: string[] | string): string {
  const what = Array.isArray(missing) ? missing.map((m) => `  ${m}`).join('\n') : `  ${missing}`;
  return (
    `Deno did not grant a permission wcp needs:\n${what}\n` +
    'Run it as: deno run --allow-env --allow-read --allow-write --allow-ffi --allow-sys --allow-net <wcp>/src/main.ts <command>\n' +
    '(each flag may name paths or hosts instead of allowing everything; see docs/releases.md, "Deno").'
  );
}
