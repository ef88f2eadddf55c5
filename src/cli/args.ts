/** Strict argument checks on top of citty (which accepts unknown flags silently). */
import type { ArgsDef } from 'citty';
import { WcpError } from '../internal/errors.ts';

/** The `--config FILE` flag of every command that reads the config. */
export const configArg = {
  config: {
    type: 'string',
    description: 'Config file (default: configs/$ENVIRONMENT.toml, else the embedded local default)',
    valueHint: 'file',
  },
} as const;

/** Throws CLI_USAGE naming the first flag the command does not define, or an unexpected positional. */
export function rejectUnknownArgs(rawArgs: string[], def: ArgsDef, maxPositionals: number): void {
  const known = new Set<string>(['help', 'h']);
  for (const [name, d] of Object.entries(def)) {
    known.add(name);
    const alias = (d as { alias?: string | string[] }).alias;
    for (const a of Array.isArray(alias) ? alias : alias ? [alias] : []) known.add(a);
    // citty also accepts --no-x and kebab/camel variants.
    known.add(name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`));
    known.add(`no-${name}`);
  }
  let positionals = 0;
  for (let i = 0; i < rawArgs.length; i++) {
    const a = rawArgs[i]!;
    if (a === '--') break;
    if (a.startsWith('-')) {
      const name = a.replace(/^--?/, '').split('=')[0]!;
      if (!known.has(name)) throw new WcpError('CLI_USAGE', `unknown option ${a.split('=')[0]}`);
      const d = def[name] as { type?: string; valueHint?: string } | undefined;
      if (d?.type === 'string') {
        // A value flag given without its value must not fall back to a default (`--config` alone would run the
        // embedded dev config): refused, naming the flag.
        const value = a.includes('=') ? a.slice(a.indexOf('=') + 1) : rawArgs[i + 1];
        if (value === undefined || value === '' || (!a.includes('=') && value !== '-' && value.startsWith('-')))
          throw new WcpError('CLI_USAGE', `option ${a.split('=')[0]} needs a value (${d.valueHint ?? 'a value'})`);
        if (!a.includes('=')) i++;
      }
    } else {
      positionals++;
      if (positionals > maxPositionals) throw new WcpError('CLI_USAGE', `unexpected argument ${JSON.stringify(a)}`);
    }
  }
}

/**
 * Writes `text` and resolves once the runtime has taken all of it. The entry point calls `process.exit` right
 * after a command returns, and Bun writes to pipes asynchronously: output a slow reader has not drained yet would be
 * cut off (a `db scan` of a few hundred lane records fills the pipe buffer).
 */
export function writeFully(stream: NodeJS.WriteStream, text: string): Promise<void> {
  if (text === '') return Promise.resolve();
  return new Promise((resolve, reject) => {
    stream.write(text, (err) => (err ? reject(err) : resolve()));
  });
}
