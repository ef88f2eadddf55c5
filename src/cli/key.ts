/**
 * `wcp key undelegate` (`undelegate.ts`) revokes the wallet's EIP-7702 delegation.
 *
 * `wcp key new` and `wcp key import`: write an encrypted JSON keystore (V3, scrypt — the format geth, Livepeer
 * and Chainlink operators hold) for `ethereum.wallet_keystore`, owner-only (0600), and print the wallet address
 * the subnet owner must register. The password comes from a file (never an argument: argv is visible to every
 * user of the host); `import` reads the raw hex key from a file or standard input.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineCommand } from 'citty';
import { Wallet } from 'ethers';
import { passwordFromFile, readSecretFile } from '../config/keys.ts';
import { loadConfig } from '../config/load.ts';
import { WcpError } from '../internal/errors.ts';
import { registerSecret } from '../internal/redact.ts';
import { configArg, rejectUnknownArgs, writeFully } from './args.ts';

const usage = (msg: string) => new WcpError('CLI_USAGE', msg);

const commonArgs = {
  out: {
    type: 'string',
    required: true,
    description: 'Keystore file to write (refused if it exists)',
    valueHint: 'file',
  },
  'password-file': {
    type: 'string',
    required: true,
    description: 'File holding the password (first line), mode 0600',
    valueHint: 'file',
  },
  'allow-insecure-key-files': {
    type: 'boolean',
    description: 'Accept a password or key file that group or others can read',
  },
} as const;

function readPassword(path: string, allowInsecure: boolean): string {
  const password = passwordFromFile(readSecretFile('--password-file', path, process.cwd(), allowInsecure).text);
  if (password.length < 8) throw usage(`--password-file: the password in ${path} is shorter than 8 characters`);
  registerSecret(password);
  return password;
}

/** Writes the keystore and says what to put in the config: the absolute paths of the files it was given. */
function writeKeystore(outArg: string, passwordFile: string, wallet: Wallet, password: string): void {
  const out = resolve(outArg);
  if (existsSync(out)) throw usage(`--out: ${out} exists; wcp never overwrites a keystore`);
  const json = wallet.encryptSync(password);
  writeFileSync(out, `${json}\n`, { mode: 0o600, flag: 'wx' });
  process.stdout.write(`${wallet.address}\n`);
  process.stderr.write(
    `keystore written to ${out} (mode 0600). Register ${wallet.address} with the subnet owner, fund it with ETH for gas, and set\n  ethereum.wallet_keystore = ${JSON.stringify(out)}\n  ethereum.wallet_password_file = ${JSON.stringify(resolve(passwordFile))}\n`,
  );
}

const newArgs = { ...commonArgs } as const;
const keyNew = defineCommand({
  meta: { name: 'new', description: 'Create a new worker key in an encrypted keystore; prints its address' },
  args: newArgs,
  run({ args, rawArgs }) {
    rejectUnknownArgs(rawArgs, newArgs, 0);
    const password = readPassword(String(args['password-file']), Boolean(args['allow-insecure-key-files']));
    const wallet = Wallet.createRandom();
    registerSecret(wallet.privateKey);
    writeKeystore(String(args.out), String(args['password-file']), new Wallet(wallet.privateKey), password);
  },
});

const importArgs = {
  ...commonArgs,
  'key-file': {
    type: 'string',
    description: 'File holding the raw hex key (default: read it from standard input)',
    valueHint: 'file',
  },
} as const;
const keyImport = defineCommand({
  meta: { name: 'import', description: 'Encrypt an existing raw hex key into a keystore; prints its address' },
  args: importArgs,
  run({ args, rawArgs }) {
    rejectUnknownArgs(rawArgs, importArgs, 0);
    const allow = Boolean(args['allow-insecure-key-files']);
    const password = readPassword(String(args['password-file']), allow);
    const raw = args['key-file']
      ? readSecretFile('--key-file', String(args['key-file']), process.cwd(), allow).text
      : readFileSync(0, 'utf8');
    let hex = raw.trim();
    if (!hex.startsWith('0x')) hex = `0x${hex}`;
    registerSecret(hex);
    if (!/^0x[0-9a-fA-F]{64}$/.test(hex)) throw usage('the key is not 64 hex characters (a 32-byte private key)');
    writeKeystore(String(args.out), String(args['password-file']), new Wallet(hex), password);
  },
});

const undelegateArgs = { ...configArg } as const;
const keyUndelegate = defineCommand({
  meta: {
    name: 'undelegate',
    description:
      "Revoke the wallet's EIP-7702 delegation (an authorization to the zero address) through the store's nonce lane; refused while the daemon runs",
  },
  args: undelegateArgs,
  async run({ args, rawArgs }) {
    rejectUnknownArgs(rawArgs, undelegateArgs, 0);
    const config = loadConfig(args.config ? { path: args.config } : {});
    const { undelegate } = await import('./undelegate.ts');
    const line = await undelegate(config);
    await writeFully(process.stdout, `${line}\n`);
  },
});

/** `wcp key …` */
export const keyCommand = defineCommand({
  meta: { name: 'key', description: "Worker key tools (encrypted keystores, the wallet's EIP-7702 delegation)" },
  subCommands: { new: keyNew, import: keyImport, undelegate: keyUndelegate },
});
