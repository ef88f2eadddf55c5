import { describe, expect, test } from 'bun:test';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encryptKeystoreJsonSync, Wallet } from 'ethers';
import { WcpError } from '../internal/errors.ts';
import { redact } from '../internal/redact.ts';
import { loadConfig } from './load.ts';

const dir = mkdtempSync(join(tmpdir(), 'wcp-keys-'));
const wallet = new Wallet('0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d');
const PASSWORD = 'correct horse battery staple';

function file(name: string, text: string, mode = 0o600): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  chmodSync(p, mode);
  return p;
}

// A cheap scrypt (N = 2^10) keeps the test fast; the format is the same V3 keystore geth writes.
const keystore = file(
  'ks.json',
  encryptKeystoreJsonSync({ address: wallet.address, privateKey: wallet.privateKey }, PASSWORD, {
    scrypt: { N: 1 << 10 },
  }),
);
const pwFile = file('pw', `${PASSWORD}\n`);

function loadError(env: Record<string, string>): WcpError {
  try {
    loadConfig({ env: { WCP__ETHEREUM__WALLET_PRIVATE_KEY: '', WCP__ETHEREUM__WALLET_ADDRESS: '', ...env }, cwd: dir });
  } catch (e) {
    expect(e).toBeInstanceOf(WcpError);
    return e as WcpError;
  }
  throw new Error('expected a failure');
}

describe('worker keys', () => {
  test('an encrypted keystore with a password file gives the wallet', () => {
    const c = loadConfig({
      env: { WCP__ETHEREUM__WALLET_KEYSTORE: keystore, WCP__ETHEREUM__WALLET_PASSWORD_FILE: pwFile },
      cwd: dir,
    });
    expect(c.ethereum.walletAddress).toBe(wallet.address);
    expect(c.ethereum.privateKey.reveal()).toBe(wallet.privateKey);
  });

  test('the password is the first line of its file (CRLF too); what follows it is ignored', () => {
    for (const [name, text] of [
      ['pw-two-lines', `${PASSWORD}\nnot part of it\n`],
      ['pw-crlf', `${PASSWORD}\r\n`],
      ['pw-no-newline', PASSWORD],
    ]) {
      const c = loadConfig({
        env: {
          WCP__ETHEREUM__WALLET_PRIVATE_KEY: '',
          WCP__ETHEREUM__WALLET_KEYSTORE: keystore,
          WCP__ETHEREUM__WALLET_PASSWORD_FILE: file(String(name), String(text)),
        },
        cwd: dir,
      });
      expect(c.ethereum.walletAddress).toBe(wallet.address);
    }
  });

  test('a wrong password is a clear config error that prints no secret', () => {
    const e = loadError({
      WCP__ETHEREUM__WALLET_KEYSTORE: keystore,
      WCP__ETHEREUM__WALLET_PASSWORD_FILE: file('pw-wrong', 'not the password 123\n'),
    });
    expect(e.code).toBe('CONFIG_INVALID');
    const text = redact(e.describe());
    expect(text).toContain('cannot be decrypted');
    expect(text).not.toContain('not the password 123');
  });

  test('key, keystore and password files readable by group or others are refused, naming the file and chmod 600', () => {
    const loose = file('pw-loose', `${PASSWORD}\n`, 0o644);
    const e = loadError({ WCP__ETHEREUM__WALLET_KEYSTORE: keystore, WCP__ETHEREUM__WALLET_PASSWORD_FILE: loose });
    expect(e.describe()).toContain(`chmod 600 ${loose}`);
    const keyFile = file('key.hex', wallet.privateKey, 0o640);
    expect(loadError({ WCP__ETHEREUM__WALLET_KEY_FILE: keyFile }).describe()).toContain(`chmod 600 ${keyFile}`);
    // explicitly allowed: accepted
    const c = loadConfig({
      env: {
        WCP__ETHEREUM__WALLET_PRIVATE_KEY: '',
        WCP__ETHEREUM__WALLET_ADDRESS: '',
        WCP__ETHEREUM__WALLET_KEY_FILE: keyFile,
        WCP__ETHEREUM__ALLOW_INSECURE_KEY_FILES: 'true',
      },
      cwd: dir,
    });
    expect(c.ethereum.walletAddress).toBe(wallet.address);
  });

  test('a keystore without a password file is refused', () => {
    expect(loadError({ WCP__ETHEREUM__WALLET_KEYSTORE: keystore }).describe()).toContain(
      'ethereum.wallet_password_file',
    );
  });
});
