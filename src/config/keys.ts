/**
 * Where the worker key comes from, first match wins:
 *   1. `ethereum.wallet_keystore` + `ethereum.wallet_password_file`: an encrypted JSON keystore (V3, scrypt);
 *   2. `ethereum.wallet_private_key` (file or `WCP__ETHEREUM__WALLET_PRIVATE_KEY`): raw hex, for development;
 *   3. `ethereum.wallet_key_file`: a file holding the raw hex.
 * Key, keystore and password files that group or others may read are refused (`chmod 600` fixes it) unless
 * `ethereum.allow_insecure_key_files` is set; so are the TLS client keys (`executor.tls_key_file`,
 * `subnet_api.tls_key_file`) and a config file holding `wallet_private_key` (`fileModeProblems`). The key and the
 * password are registered for redaction before any check can print them; errors name the field and the file, never
 * the value, and a path that names no file is not shown either (it may be a secret pasted into the wrong field).
 */
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { Wallet } from 'ethers';
import { WcpError } from '../internal/errors.ts';
import { EMBEDDED_CONFIGS } from './embedded.ts';
import { registerSecret } from '../internal/redact.ts';
import type { ConfigFile } from './schema.ts';
import { Secret } from './secret.ts';

const invalid = (detail: string) => new WcpError('CONFIG_INVALID', 'config is invalid', { details: [detail] });

/** The password a password file holds: its first line (without the line break); the rest of the file is ignored. */
export function passwordFromFile(text: string): string {
  return text.split(/\r?\n/, 1)[0] ?? '';
}

const modeText = (mode: number): string => (mode & 0o777).toString(8).padStart(3, '0');

const readableByOthers = (field: string, p: string, mode: number, what = p): string =>
  `${field}: ${what} can be read by group or others (mode ${modeText(mode)}); run \`chmod 600 ${p}\` (or set ethereum.allow_insecure_key_files = true)`;

/** Why a configured file cannot be read, without its path when it names no file (see the module doc). */
const unreadable = (field: string, p: string, e: unknown): string => {
  const code = (e as NodeJS.ErrnoException).code ?? 'error';
  return code === 'ENOENT'
    ? `${field}: no file at the configured path (not shown: a value that names no file may be a password or key pasted into the wrong field; check the path)`
    : `${field}: cannot read ${p}: ${code}`;
};

/** The public test key the embedded local config ships with (anvil's account #1): there is nothing to protect. */
const PUBLIC_DEV_KEY = /wallet_private_key\s*=\s*"(0x[0-9a-fA-F]{64})"/.exec(EMBEDDED_CONFIGS.local ?? '')?.[1];

/**
 * Secret-bearing files readable by group or others, found without reading them: the TLS client keys, and the
 * config file itself when it holds `wallet_private_key` (`configFile`; anvil's public test key is exempt, so a copy
 * of configs/local.toml still runs). A file that does not exist is left to whatever reads it.
 */
export function fileModeProblems(
  file: ConfigFile,
  cwd: string,
  configFile: { path: string; key: string } | undefined,
): string[] {
  if (file.ethereum.allow_insecure_key_files) return [];
  const out: string[] = [];
  const modeOf = (p: string): number | undefined => {
    try {
      return statSync(p).mode;
    } catch {
      return undefined;
    }
  };
  for (const [field, path] of [
    ['executor.tls_key_file', file.executor.tls_key_file],
    ['subnet_api.tls_key_file', file.subnet_api.tls_key_file],
  ] as const) {
    if (!path) continue;
    const p = isAbsolute(path) ? path : resolve(cwd, path);
    const mode = modeOf(p);
    if (mode !== undefined && (mode & 0o077) !== 0) out.push(readableByOthers(field, p, mode));
  }
  if (configFile && configFile.key.toLowerCase() !== PUBLIC_DEV_KEY?.toLowerCase()) {
    const mode = modeOf(configFile.path);
    if (mode !== undefined && (mode & 0o077) !== 0) {
      out.push(
        `${readableByOthers('ethereum.wallet_private_key', configFile.path, mode, `the key is in ${configFile.path}, which`)}; or move the key to a keystore, wallet_key_file or WCP__ETHEREUM__WALLET_PRIVATE_KEY`,
      );
    }
  }
  return out;
}

/** Reads a secret-bearing file after checking it is owner-only (unless allowed). */
export function readSecretFile(
  field: string,
  path: string,
  cwd: string,
  allowInsecure: boolean,
): { path: string; text: string } {
  const p = isAbsolute(path) ? path : resolve(cwd, path);
  let mode: number;
  try {
    mode = statSync(p).mode;
  } catch (e) {
    throw invalid(unreadable(field, p, e));
  }
  if ((mode & 0o077) !== 0 && !allowInsecure) throw invalid(readableByOthers(field, p, mode));
  try {
    return { path: p, text: readFileSync(p, 'utf8') };
  } catch (e) {
    throw invalid(unreadable(field, p, e));
  }
}

function fromKeystore(eth: ConfigFile['ethereum'], cwd: string): { hex: string; origin: string } {
  if (!eth.wallet_password_file) {
    throw invalid(
      'ethereum.wallet_password_file: got nothing, expected the file holding the keystore password (required with wallet_keystore)',
    );
  }
  const pw = readSecretFile(
    'ethereum.wallet_password_file',
    eth.wallet_password_file,
    cwd,
    eth.allow_insecure_key_files,
  );
  const password = passwordFromFile(pw.text);
  registerSecret(password);
  const ks = readSecretFile('ethereum.wallet_keystore', eth.wallet_keystore, cwd, eth.allow_insecure_key_files);
  let wallet: Wallet;
  try {
    wallet = Wallet.fromEncryptedJsonSync(ks.text, password) as Wallet;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const wrongPassword = /password|incorrect|invalid/i.test(msg) && !/json|parse/i.test(msg);
    throw invalid(
      wrongPassword
        ? `ethereum.wallet_keystore: ${ks.path} cannot be decrypted with the password in ${pw.path} (wrong password?)`
        : `ethereum.wallet_keystore: ${ks.path} is not a JSON keystore (V3) wcp can read`,
    );
  }
  return { hex: wallet.privateKey, origin: `ethereum.wallet_keystore (${ks.path})` };
}

/** The worker key and its address, from the first configured source (see the module doc). */
export function resolveKey(file: ConfigFile, cwd: string): { key: Secret; address: string } {
  const eth = file.ethereum;
  let hex = '';
  let origin = 'ethereum.wallet_private_key';
  if (eth.wallet_keystore) {
    ({ hex, origin } = fromKeystore(eth, cwd));
  } else if (eth.wallet_private_key.trim()) {
    hex = eth.wallet_private_key.trim();
  } else if (eth.wallet_key_file) {
    const f = readSecretFile('ethereum.wallet_key_file', eth.wallet_key_file, cwd, eth.allow_insecure_key_files);
    hex = f.text.trim();
    origin = `ethereum.wallet_key_file (${f.path})`;
  }
  if (!hex) {
    throw invalid(
      'ethereum.wallet_private_key: got nothing, expected a key (set wallet_keystore + wallet_password_file, WCP__ETHEREUM__WALLET_PRIVATE_KEY, or wallet_key_file)',
    );
  }
  if (!hex.startsWith('0x')) hex = `0x${hex}`;
  registerSecret(hex);
  if (!/^0x[0-9a-fA-F]{64}$/.test(hex)) {
    throw invalid(
      `${origin}: got [REDACTED] (${hex.length - 2} hex chars), expected 64 hex characters (a 32-byte private key)`,
    );
  }
  let address: string;
  try {
    address = new Wallet(hex).address;
  } catch {
    throw invalid(`${origin}: got [REDACTED], expected a valid secp256k1 private key`);
  }
  if (eth.wallet_address && eth.wallet_address.toLowerCase() !== address.toLowerCase()) {
    throw invalid(`ethereum.wallet_address: got ${eth.wallet_address}, expected the key's address ${address}`);
  }
  return { key: new Secret(hex), address };
}
