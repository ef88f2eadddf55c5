/**
 * What the config unit tests share: files in one temp directory per test file (removed at exit), and a refused
 * load as the text wcp prints (message with its code, then the detail lines, through the redactor as `exit.ts`
 * passes it).
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorText, WcpError } from '../../internal/errors.ts';
import { redact } from '../../internal/redact.ts';

export interface ConfigFiles {
  readonly dir: string;
  /** A new file holding `text` (mode 0600 unless given), named `<random><ext>`. */
  file(text: string, opts?: { mode?: number; ext?: string }): string;
}

/** A temp directory for one test file's config files; removed when the process exits. */
export function configFiles(prefix: string): ConfigFiles {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    file(text, opts = {}) {
      const p = join(dir, `c${Math.random().toString(36).slice(2)}${opts.ext ?? '.toml'}`);
      writeFileSync(p, text);
      chmodSync(p, opts.mode ?? 0o600);
      return p;
    },
  };
}

/** The refusal `fn` throws, as printed (redacted); throws when `fn` does not refuse with a WcpError of `code`. */
export function refusalText(fn: () => unknown, code?: WcpError['code']): string {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof WcpError)) throw new Error(`expected a WcpError, got ${String(e)}`);
    if (code !== undefined && e.code !== code) throw new Error(`expected ${code}, got ${e.code}: ${e.message}`);
    return redact(`${errorText(e)}\n${e.details.join('\n')}`);
  }
  throw new Error('expected a refusal, got success');
}
