/**
 * Where the worker key comes from, first match wins:
 *   1. `ethereum.wallet_keystore` + `ethereum.wallet_password_file`: an encrypted JSON keystore (V3, scrypt);
 *   2. `ethereum.wallet_private_key` (file or `WCP__ETHEREUM__WALLET_PRIVATE_KEY`): raw hex, for development;
 *   3. `ethereum.wallet_key_file`: a file holding the raw hex.
 * Key, keystore and password files that group or others may read are refused (`chmod 600` fixes it) unless
 * `ethereum.allow_insecure_key_files` is set. The key and the password are registered for redaction before any
 * check can print them; errors name the field and the file, never the value.
 */
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { Wallet } from 'ethers';
import { WcpError } from '../internal/errors.ts';
import { registerSecret } from '../internal/redact.ts';
import type { ConfigFile } from './schema.ts';
import { Secret } from './secret.ts';

const invalid = (detail: string) => new WcpError('CONFIG_INVALID', 'config is invalid', { details: [detail] });

/** The password a password file holds: its first line (without the line break); the rest of the file is ignored. */
export function passwordFromFile(text: string): string {
  return text.split(/\r?\n/, 1)[0] ?? '';
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
    throw invalid(`${field}: cannot read ${p}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if ((mode & 0o077) !== 0 && !allowInsecure) {
    throw invalid(
      `${field}: ${p} can be read by group or others (mode ${(mode & 0o777).toString(8).padStart(3, '0')}); run \`chmod 600 ${p}\` (or set ethereum.allow_insecure_key_files = true)`,
    );
  }
  try {
    return { path: p, text: readFileSync(p, 'utf8') };
  } catch (e) {
    throw invalid(`${field}: cannot read ${p}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
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
